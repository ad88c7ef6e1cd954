-- ctx.metrics: what a product told phonehome over StatsD since its last delivered report,
-- as a report's fields read it (daemon/statsd.lua keeps the window).
local stats = require("phonehome.stats")

local M = {}

-- The distinct values of a histogram sorted, with their counts.
local function sorted(agg)
    local order = {}
    for i in ipairs(agg.values or {}) do order[i] = i end
    table.sort(order, function(a, b) return agg.values[a] < agg.values[b] end)
    local values, counts = {}, {}
    for k, i in ipairs(order) do values[k], counts[k] = agg.values[i], agg.counts[i] end
    return values, counts
end

local function histogram(agg)
    local values, counts = sorted(agg)
    local out = { count = agg.count or 0, sum = agg.sum or 0, lines = agg.lines or 0,
                  approximate = agg.bucketed == true }
    if out.count > 0 then
        local s = stats.summary(values, counts)
        -- the exact figures where buckets only approximate them
        out.min, out.max, out.mean = agg.min, agg.max, agg.sum / agg.count
        out.median, out.mode = s.median, s.mode
    end
    out.percentile = stats.percentiles(values, counts)
    return out
end

-- view(def, held) -> ctx.metrics, where held is { [name] = aggregate } (nil: none yet).
-- A counter gives { value (its sum; 0 when none came), lines }, a gauge { value (nil
-- until one is set), lines }, a timer or histogram { count, sum, min, max, mean,
-- median, mode (nil when empty), percentile(q), approximate (values were bucketed,
-- within 1%), lines }, a set { count (distinct values), lines }. A name the script does
-- not declare is an error.
function M.view(def, held)
    local declared = {}
    for _, m in ipairs(def.metrics or {}) do declared[m.name] = m end
    local cache = {}
    return setmetatable({}, { __metatable = false, __index = function(_, name)
        local m = declared[name]
        if not m then error("undeclared metric " .. string.format("%q", tostring(name)), 2) end
        if cache[name] then return cache[name] end
        local agg = type(held) == "table" and held[name] or {}
        local out
        if m.kind == "histogram" then
            out = histogram(agg)
        elseif m.kind == "set" then
            out = { count = agg.distinct or 0, lines = agg.lines or 0 }
        elseif m.kind == "counter" then
            out = { value = agg.value or 0, lines = agg.lines or 0 }
        else
            out = { value = agg.value, lines = agg.lines or 0 }
        end
        cache[name] = out
        return out
    end })
end

return M
