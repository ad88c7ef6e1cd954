-- What several commands take from the command line: the settings of --set and
-- --config, the target process of --pid or --pidfile, a product opened from --scripts,
-- and one build of its report. Used only by the modules of this package.
local async = require("phonehome.base.async")
local core = require("phonehome.core")
local datadir = require("phonehome.daemon.datadir")
local log = require("phonehome.base.log")
local pidfile = require("phonehome.base.pidfile")
local sandbox = require("phonehome.sandbox")
local settings = require("phonehome.definition.settings")

local M = {}

-- Options of the commands that describe a target process.
M.pid_options = { pid = "value", pidfile = "value" }
M.pid_help = [[
  --pid N            the product's server process, described by process probes
  --pidfile FILE     the same, read from a pid file
]]

-- fail(message) -> 1, the message on stderr.
function M.fail(msg)
    io.stderr:write("phonehome: ", msg, "\n")
    return 1
end

-- Settings from --set and --config into ctx.from_set and ctx.from_config, checked for
-- products that do not exist: true, or nil, message.
function M.gather_settings(ctx)
    local from_set, err = settings.parse_set(ctx.options.set or {})
    if not from_set then return nil, err end
    local from_config = {}
    if ctx.options.config then
        from_config, err = sandbox.read_data(ctx.options.config)
        if not from_config then return nil, err end
    end
    local known = {}
    for _, n in ipairs(sandbox.names(ctx.scripts)) do known[n] = true end
    for name in pairs(from_set) do
        if not known[name] then return nil, "--set: unknown product '" .. name .. "'" end
    end
    for name, t in pairs(from_config) do
        if not known[name] then
            return nil, "--config: unknown product '" .. tostring(name) .. "'"
        end
        if type(t) ~= "table" then return nil, "--config: " .. name .. " must be a table of "
            .. "settings" end
    end
    ctx.from_set, ctx.from_config = from_set, from_config
    return true
end

-- The target process: --pid, --pidfile, or 0 for phonehome itself; nil, message. It
-- must exist now; the daemon reads a pid file again at every build.
local function target_pid(ctx)
    local pid = ctx.options.pid
    if ctx.options.pidfile then
        local err
        pid, err = pidfile.read(ctx.options.pidfile)
        if not pid then return nil, err end
    end
    if pid == nil then return 0 end
    local n = math.tointeger(tonumber(pid))
    if not n or n <= 0 then return nil, "--pid: not a process id: " .. tostring(pid) end
    local ok, err = core.process(n)
    if not ok then return nil, err end
    return n
end

-- prepare(ctx) -> the target pid (0: phonehome itself), settings gathered; nil, message.
function M.prepare(ctx)
    local ok, err = M.gather_settings(ctx)
    if not ok then return nil, err end
    return target_pid(ctx)
end

-- open(ctx, name) -> the product of that name in --scripts, or nil, { message } naming
-- the products there are.
function M.open(ctx, name)
    if not core.exists(sandbox.path(ctx.scripts, name)) then
        local known = sandbox.names(ctx.scripts)
        return nil, { string.format("unknown product '%s' (in %s: %s)", name, ctx.scripts,
            #known > 0 and table.concat(known, ", ") or "none") }
    end
    return sandbox.open_in(ctx.scripts, name)
end

-- build_once(ctx, p, pid, dry) -> json, warnings, info | nil, problems: a
-- product's report
-- with the command line's settings, built as the daemon would build it now from the
-- data directory (its last report, its schedule state). A dry build (check) touches no
-- file: no state, and a fresh instance id.
function M.build_once(ctx, p, pid, dry)
    local typed, err = settings.resolve(p.def, ctx.from_set[p.name], ctx.from_config[p.name])
    if not typed then return nil, { err } end
    local bad = datadir.problems(p.def)
    if #bad > 0 then
        for i, e in ipairs(bad) do bad[i] = p.path .. ": " .. e end
        return nil, bad
    end
    if not dry then datadir.migrate(ctx.data_dir, p.def) end
    local D = { data_dir = ctx.data_dir, pid = pid ~= 0 and pid or nil, ctx = ctx,
                pidfile = ctx.options.pidfile, session_id = ctx.session_id, flags = ctx.flags }
    local rec = { name = p.name, product = p, def = p.def, settings = typed,
                  state = dry and {} or datadir.read_state(ctx.data_dir, p.name),
                  previous = dry and false or nil }
    -- sources are read on the loop: the build runs in a coroutine while the loop turns
    local res
    async.spawn(function()
        res = table.pack(require("phonehome.daemon.runner").build(D, rec, dry))
    end)
    if not res then core.run() end
    local body, problems = res[1], res[2]
    if body then
        for _, w in ipairs(problems) do log.warn({ product = p.name, msg = w }) end
    end
    return body, problems, res[3] or {}
end

return M
