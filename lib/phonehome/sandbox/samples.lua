-- ctx.samples: the window of samples the daemon took for a product since its last
-- delivered report, as a report's fields read it: per sampler its series and summaries.
local stats = require("phonehome.stats")

local M = {}

local function copy(list)
    local out = {}
    for i, v in ipairs(list or {}) do out[i] = v end
    return out
end

-- view(def, held) -> ctx.samples, where held is what the daemon keeps ({ NAME = { t, v,
-- dropped } }). NAME gives { values, times (epoch seconds), count, dropped (the oldest
-- left out when the window was full), min, max, mean, median, mode (nil when there is no
-- sample), percentile(q) }; a name no sampler declares is an error.
function M.view(def, held)
    local declared = {}
    for _, s in ipairs(def.samplers or {}) do declared[s.name] = true end
    local cache = {}
    return setmetatable({}, { __metatable = false, __index = function(_, name)
        if not declared[name] then
            error("unknown sampler " .. string.format("%q", tostring(name)), 2)
        end
        if cache[name] then return cache[name] end
        local w = type(held) == "table" and held[name] or {}
        local values = copy(w.v)
        local out = { values = values, times = copy(w.t), count = #values,
                      dropped = w.dropped or 0 }
        if #values > 0 then
            local sum = stats.summary(values)
            out.min, out.max, out.mean, out.median, out.mode =
                sum.min, sum.max, sum.mean, sum.median, sum.mode
        end
        local sorted, ones = copy(values), {}
        table.sort(sorted)
        for i in ipairs(sorted) do ones[i] = 1 end
        out.percentile = stats.percentiles(sorted, ones)
        cache[name] = out
        return out
    end })
end

return M
