-- Samplers: readings the daemon takes on a period between reports, kept as the window of
-- samples a report's fields read (series or summary). The declaration and its check; the
-- daemon takes them (daemon/samplers.lua), the sandbox shows them (sandbox/samples.lua).
local duration = require("phonehome.duration")
local metrics = require("phonehome.definition.metrics")
local schema = require("phonehome.definition.schema")

local M = {}

-- What a sampler can read, and in what unit.
M.PROBES = {
    ["process.rss"] = "bytes: resident memory of the product's process",
    ["process.cpu"] = "cores: CPU time of the product's process per second since the "
        .. "previous sample of the same process (the first sample of a process gives none)",
    ["system.memory_available"] = "bytes: memory available to new work on the host",
}

M.DEFAULT_MAX = 1440   -- a day of samples taken every minute
M.MAX_MAX = 100000
M.MIN_EVERY = 1000     -- ms

local keys = { name = true, every = true, probe = true, metric = true, source = true,
               value = true, max = true, description = true }

-- check(def, problem): samplers = { { name, every, probe or metric or source and value,
-- description [, max] }, ... }: a probe; the value of a gauge the product declares in
-- metrics (checked first); or value(ctx), a number from what source (one of the
-- product's sources, checked first) reads. every is normalised to milliseconds and max
-- given its default.
function M.check(def, problem)
    if def.samplers == nil then
        def.samplers = {}
        return
    end
    if type(def.samplers) ~= "table" then
        problem("samplers", "samplers must be a list of tables")
        def.samplers = {}
        return
    end
    local seen = {}
    for i, s in ipairs(def.samplers) do
        local where = "samplers." .. (type(s) == "table" and tostring(s.name) or i)
        if type(s) ~= "table" then
            problem(where, "a sampler must be a table")
        else
            schema.unknown_keys(s, keys, problem, where, true)
            if type(s.name) ~= "string" or not s.name:match("^[%a_][%w_]*$") then
                problem(where, "name must be an identifier")
            elseif seen[s.name] then
                problem(where, "another sampler is named '" .. s.name .. "'")
            end
            seen[s.name or i] = true
            if type(s.description) ~= "string" or s.description == "" then
                problem(where, "description must be a non-empty string")
            end
            local reads = (s.probe ~= nil and 1 or 0) + (s.metric ~= nil and 1 or 0)
                + (s.source ~= nil and 1 or 0)
            if reads > 1 then
                problem(where, "a sampler reads one of a probe, a metric or a source")
            elseif s.metric ~= nil then
                local m = metrics.find(def, s.metric)
                if not (m and m.type == "gauge") then
                    problem(where, "metric must name a gauge declared in metrics")
                end
            elseif s.source ~= nil then
                if not (def.sources_by_name or {})[s.source] then
                    problem(where, "source must name one of the product's sources")
                end
                if type(s.value) ~= "function" then
                    problem(where, "value must be a function(ctx) giving a number")
                end
            elseif not M.PROBES[s.probe] then
                local names = {}
                for k in pairs(M.PROBES) do names[#names + 1] = k end
                table.sort(names)
                problem(where, "probe must be one of " .. table.concat(names, ", "))
            end
            if s.value ~= nil and s.source == nil then
                problem(where, "value goes with source")
            end
            local ms, err = duration.parse(s.every, true, where .. ".every")
            if not ms then
                problem(where, err)
            elseif ms < M.MIN_EVERY then
                problem(where, "every must be at least " .. duration.format(M.MIN_EVERY))
            else
                s.every = ms
            end
            if s.max == nil then
                s.max = M.DEFAULT_MAX
            elseif math.type(s.max) ~= "integer" or s.max < 1 or s.max > M.MAX_MAX then
                problem(where, "max must be an integer from 1 to " .. M.MAX_MAX)
            end
        end
    end
end

-- describe(samplers) -> the declarations as plain data (no value function).
function M.describe(samplers)
    local out = {}
    for i, s in ipairs(samplers or {}) do
        out[i] = { name = s.name, probe = s.probe, metric = s.metric, source = s.source,
                   every = s.every, max = s.max, description = s.description }
    end
    return out
end

return M
