-- Metrics: what a product may tell phonehome as it happens, over StatsD. A script
-- declares each name it accepts and its type; the daemon listens while any product
-- declares one (daemon/statsd.lua) and keeps their aggregates in the window a report's
-- fields read (sandbox/metrics.lua). The declaration and its check.
local schema = require("phonehome.definition.schema")

local M = {}

-- Each type a script may declare: the aggregate it is kept as, the StatsD line types it
-- takes, and what a field reads of it.
local HISTOGRAM = { kind = "histogram", lines = "ms, h, d",
                    reads = "count, sum, min, max, mean, median, mode, percentiles" }
M.TYPES = {
    counter = { kind = "counter", lines = "c",
                reads = "the sum since the last report delivered (sample rates applied)" },
    gauge = { kind = "gauge", lines = "g",
              reads = "the last value (+/- change it), kept from one report to the next" },
    timer = HISTOGRAM, histogram = HISTOGRAM, distribution = HISTOGRAM,
    set = { kind = "set", lines = "s",
            reads = "the count of distinct values (HyperLogLog, within 2%; none is kept)" },
}

local keys = { name = true, type = true, description = true }

-- check(def, problem): metrics = { { name, type, description }, ... }; each is given
-- its kind (the aggregate it is kept as).
function M.check(def, problem)
    if def.metrics == nil then
        def.metrics = {}
        return
    end
    if type(def.metrics) ~= "table" then
        problem("metrics", "metrics must be a list of tables")
        def.metrics = {}
        return
    end
    local seen = {}
    for i, m in ipairs(def.metrics) do
        local where = "metrics." .. (type(m) == "table" and tostring(m.name) or i)
        if type(m) ~= "table" then
            problem(where, "a metric must be a table")
        else
            schema.unknown_keys(m, keys, problem, where, true)
            if type(m.name) ~= "string" or #m.name > 200
                or not m.name:match("^[%w_][%w_%.%-/]*$") then
                problem(where, "name must be letters, digits, '_', '.', '-' or '/' "
                        .. "(at most 200), as StatsD clients send them")
            elseif seen[m.name] then
                problem(where, "another metric is named '" .. m.name .. "'")
            end
            seen[m.name or i] = true
            if type(m.description) ~= "string" or m.description == "" then
                problem(where, "description must be a non-empty string")
            end
            local t = M.TYPES[m.type]
            if not t then
                local names = {}
                for k in pairs(M.TYPES) do names[#names + 1] = k end
                table.sort(names)
                problem(where, "type must be one of " .. table.concat(names, ", "))
            else
                m.kind = t.kind
            end
        end
    end
end

-- The declared metric named name, or nil.
function M.find(def, name)
    for _, m in ipairs(def.metrics or {}) do
        if m.name == name then return m end
    end
end

return M
