-- The trusted side of a product's sandbox: gives the script an allow-listed
-- environment, loads and checks its definition, and builds its report on request.
-- Its functions are called from the control state through sb:call(name, ...).
local getinfo = debug.getinfo
local definition = require("phonehome.definition")
local report = require("phonehome.report")
local schema = require("phonehome.schema")
local probes = require("phonehome.probes")
local core = require("phonehome.core")

-- Nothing in the sandbox may reach the debug library or the string metatable.
debug = nil            -- luacheck: ignore 111 121
package.loaded.debug = nil
getmetatable("").__metatable = false

local M = {}

local state = {}       -- chunkname, lines of the source, the checked definition

-- Modules a script may require: the pure-Lua helpers of the library.
local requirable = { ["phonehome.stats"] = true, ["phonehome.json"] = true,
                     ["phonehome.duration"] = true, ["phonehome.timefmt"] = true }

local function copy(t)
    local c = {}
    for k, v in pairs(t) do c[k] = v end
    return c
end

-- A fresh environment of allowed globals; any other name is an error, read or written.
local function script_env()
    local env = {
        assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
        pcall = pcall, select = select, tonumber = tonumber, tostring = tostring,
        type = type, xpcall = xpcall, rawequal = rawequal, rawget = rawget, rawlen = rawlen,
        rawset = rawset, setmetatable = setmetatable, getmetatable = getmetatable,
        _VERSION = _VERSION,
        string = copy(string), table = copy(table), math = copy(math), utf8 = copy(utf8),
        coroutine = copy(coroutine),
        os = { time = os.time, clock = os.clock, date = os.date, difftime = os.difftime },
    }
    env.string.dump = nil
    env.load = function(chunk, name, mode, e)
        if mode ~= nil and mode ~= "t" then error("only text chunks may be loaded", 2) end
        return load(chunk, name, "t", e or env)
    end
    -- read-only views: a script that could replace json.encode could send what its
    -- declarations never allowed
    local views = {}
    env.require = function(name)
        if not requirable[name] then error("module '" .. tostring(name) .. "' is not available "
            .. "to scripts", 2) end
        views[name] = views[name] or setmetatable({}, {
            __index = require(name), __metatable = false,
            __newindex = function(_, k) error("module " .. name .. " is read-only (" .. tostring(k) .. ")", 2) end,
        })
        return views[name]
    end
    env._G = env
    return setmetatable(env, {
        __index = function(_, k) error("undeclared global '" .. tostring(k) .. "'", 2) end,
        __newindex = function(_, k) error("assignment to undeclared global '" .. tostring(k) .. "'", 2) end,
    })
end

-- The line of the first occurrence, at or after line `from`, of a key as `key =`,
-- `"key"` or `'key'`; nil when there is none.
local function find_line(key, from)
    local pat = "%f[%w_]" .. key:gsub("%p", "%%%0") .. "%s*="
    for i = from, #state.lines do
        local l = state.lines[i]
        if l:find('"' .. key .. '"', 1, true) or l:find("'" .. key .. "'", 1, true) or l:find(pat) then
            return i
        end
    end
    return nil
end

-- "file:line" of a definition path ("schedule.first", "fields.instance.uuid",
-- "instance.uuid[3]"): the declaring function's line when known, else a search of the
-- source for each part of the path in turn.
local function where(path, line)
    local file = state.chunkname:gsub("^@", "")
    if line then return file .. ":" .. line end
    line = 1
    local from = 1
    for part in path:gmatch("[^%.%[%]]+") do
        local l = find_line(part, from)
        if l then from, line = l, l end
    end
    return file .. ":" .. line
end

-- Sets f.line for every field that has a function, recursively.
local function mark_lines(list)
    for _, f in ipairs(list) do
        if type(f) == "table" then
            if type(f.value) == "function" then f.line = getinfo(f.value, "S").linedefined end
            if type(f.fields) == "table" then mark_lines(f.fields) end
        end
    end
end

-- load(source, chunkname) -> description of the definition; raises a message of one
-- "file:line: problem" line per problem.
function M.load(source, chunkname)
    state = { chunkname = chunkname, lines = {} }
    for l in (source .. "\n"):gmatch("([^\n]*)\n") do state.lines[#state.lines + 1] = l end
    local chunk, err = load(source, chunkname, "t", script_env())
    if not chunk then error(err, 0) end
    local def = chunk()
    local problems = {}
    if type(def) == "table" and type(def.fields) == "table" then mark_lines(def.fields) end
    definition.check(def, function(path, msg)
        problems[#problems + 1] = where(path) .. ": " .. msg
    end)
    local base = chunkname:match("([^/]+)%.lua$")
    if type(def) == "table" and type(def.name) == "string" and base and def.name ~= base then
        problems[#problems + 1] = where("name") .. ": name '" .. def.name
            .. "' does not match the file name '" .. base .. ".lua'"
    end
    if #problems > 0 then error(table.concat(problems, "\n"), 0) end
    state.def = def
    return definition.describe(def)
end

-- build(opts) -> json, warnings | nil, errors.
-- opts: settings (typed, defaults applied), pid, instance_id, session_id, last_sent,
-- previous (the product's previous report, decoded, for figures counted between reports),
-- previous_process ({ pid, start_time, time, cpu } of the target at the previous report).
function M.build(opts)
    local def = assert(state.def, "no definition loaded")
    report.current = nil
    local ctx = {
        product = def.name,
        settings = opts.settings or {},
        instance_id = opts.instance_id,
        session_id = opts.session_id,
        last_sent = opts.last_sent,
        previous = opts.previous,
        previous_process = opts.previous_process,
        now = core.time(),
        system = probes.system,
        process = probes.process(opts.pid),
        getenv = core.getenv,
        uuid = core.uuid,
    }
    return report.build(def, ctx, where)
end

-- validate(value) -> a list of problems of a report against the definition (empty
-- when it conforms): the check a report passes before it leaves, applied to one received.
function M.validate(value)
    local def = assert(state.def, "no definition loaded")
    local problems = {}
    local root = { type = "object", fields = def.fields }
    schema.check(root, value, "", function(path, msg)
        problems[#problems + 1] = "field '" .. path:gsub("^%.", "") .. "': " .. msg
    end)
    return problems
end

-- current() -> the path and "file:line" of the field whose computation was
-- interrupted, if any.
function M.current()
    local c = report.current
    if c then return c.path, where(c.path, c.line) end
end

-- read_data(source, chunkname) -> the table a data-only Lua file returns or assigns.
function M.read_data(source, chunkname)
    local env = {}
    local chunk, err = load(source, chunkname, "t", env)
    if not chunk then error(err, 0) end
    local t = chunk()
    if t == nil then t = env end
    if type(t) ~= "table" then error(chunkname:gsub("^@", "") .. ": must hold a table", 0) end
    return t
end

return M
