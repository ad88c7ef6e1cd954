-- The trusted side of a product's sandbox, run inside the product's own Lua state:
-- loads the script in its allow-listed environment, checks its definition and builds its
-- report on request. The control state calls these functions through sb:call(name, ...)
-- (see sandbox/init.lua); only plain values cross.
-- first: these keep debug.getinfo, for the lines of declarations
local where = require("phonehome.sandbox.where")
require("phonehome.fields")
local build = require("phonehome.sandbox.build")
local core = require("phonehome.core")
local definition = require("phonehome.definition")
local env = require("phonehome.sandbox.env")
local environment = require("phonehome.definition.environment")
local probes = require("phonehome.sandbox.probes")

-- Nothing in the sandbox may reach the debug library or the string metatable.
debug = nil            -- luacheck: ignore 111 121
package.loaded.debug = nil
getmetatable("").__metatable = false

local M = {}

local state = {}       -- the positions of the loaded script, its checked definition

-- load(source, chunkname) -> description of the definition; raises a message of one
-- "file:line: problem" line per problem.
function M.load(source, chunkname)
    local pos = where.new(chunkname, source)
    state = { where = function(path, line) return pos:at(path, line) end }
    local chunk, err = load(source, chunkname, "t", env.new())
    if not chunk then error(err, 0) end
    local def = chunk()
    local problems = {}
    if type(def) == "table" and type(def.fields) == "table" then pos:declare(def.fields) end
    definition.check(def, function(path, msg)
        problems[#problems + 1] = state.where(path) .. ": " .. msg
    end)
    local base = chunkname:match("([^/]+)%.lua$")
    if type(def) == "table" and type(def.name) == "string" and base and def.name ~= base then
        problems[#problems + 1] = state.where("name") .. ": name '" .. def.name
            .. "' does not match the file name '" .. base .. ".lua'"
    end
    if #problems > 0 then error(table.concat(problems, "\n"), 0) end
    state.def = def
    return definition.describe(def)
end

-- build(source, chunkname, opts) -> json, warnings | nil, errors: loads the script,
-- then builds its report. Each call runs in a process of its own, on a copy of a state
-- that has never run the script, so the script is loaded again every time.
-- opts: settings (typed, defaults applied), pid, instance_id, session_id, last_sent,
-- previous (the product's previous report, decoded, for figures counted between reports),
-- previous_process ({ pid, start_time, time, cpu } of the target at the previous report),
-- pid_error (why the target process is not known: every use of ctx.process fails).
function M.build(source, chunkname, opts)
    M.load(source, chunkname)
    local def = state.def
    build.current = nil
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
        getenv = environment.reader(def, core.getenv),
        uuid = core.uuid,
    }
    -- the target process is read when a field first asks for it: when it is gone, only
    -- the fields that use it fail
    setmetatable(ctx, { __metatable = false, __index = function(t, k)
        if k ~= "process" then return nil end
        if opts.pid_error then error(opts.pid_error, 2) end
        local p = probes.process(opts.pid)
        rawset(t, "process", p)
        return p
    end })
    return build.build(def, ctx, function(path, line)
        return state.where("fields." .. path, line)
    end)
end

-- current() -> the path and "file:line" of the field whose computation was
-- interrupted, if any.
function M.current()
    local c = build.current
    if c then return c.path, state.where("fields." .. c.path, c.line) end
end

-- read_data(source, chunkname) -> the table a data-only Lua file returns or assigns.
function M.read_data(source, chunkname)
    local globals = {}
    local chunk, err = load(source, chunkname, "t", globals)
    if not chunk then error(err, 0) end
    local t = chunk()
    if t == nil then t = globals end
    if type(t) ~= "table" then error(chunkname:gsub("^@", "") .. ": must hold a table", 0) end
    return t
end

return M
