-- `phonehome run`, the daemon: every product on its schedule in one libuv loop, in its
-- own sandbox, with its own spool. Modules here: runner (one product's record and
-- reports), reload and watch (scripts changing while it runs), spool and send (delivery),
-- datadir (everything kept on disk). This module owns the lifecycle: start, signals,
-- --once, and a graceful stop.
local async = require("phonehome.base.async")
local core = require("phonehome.core")
local datadir = require("phonehome.daemon.datadir")
local log = require("phonehome.base.log")
local reload = require("phonehome.daemon.reload")
local runner = require("phonehome.daemon.runner")
local samplers = require("phonehome.daemon.samplers")
local statsd = require("phonehome.daemon.statsd")
local sandbox = require("phonehome.sandbox")
local watch = require("phonehome.daemon.watch")

local M = {}

M.GRACE = 5   -- seconds a stop waits for transfers in flight
M.MIN_SCALE, M.MAX_SCALE = 0.001, 1e9   -- --time-scale

-- The daemon's state D (see daemon/runner.lua), with every product the command line
-- names, or every script, loaded; products that cannot run are logged and left out.
local function load_products(ctx, scale)
    local start = core.time()
    local D = { ctx = ctx, data_dir = ctx.data_dir, flags = ctx.flags, scale = scale,
                pid = ctx.pid, pidfile = ctx.options.pidfile, endpoint = ctx.options.endpoint,
                dry_run = ctx.options["dry-run"] == true, once = ctx.options.once == true,
                session_id = core.uuid(), products = {}, stopping = false,
                statsd_unix = ctx.options["statsd-unix"] }
    D.statsd_udp = ctx.options.statsd or statsd.DEFAULT_UDP
    if D.statsd_udp == "off" then D.statsd_udp = nil end
    function D.sched_opts(p)
        return { start = start, now = core.time(), state = p.state,
                 settings = runner.settings_now(p), scale = scale, random = math.random }
    end
    local names = #ctx.args > 0 and ctx.args or sandbox.names(ctx.scripts)
    if #ctx.args > 0 then
        D.only = {}
        for _, n in ipairs(ctx.args) do D.only[n] = true end
    end
    for _, name in ipairs(names) do
        local p, why = runner.load(D, name)
        if p then
            D.products[#D.products + 1] = p
        else
            log.error({ product = name, msg = "product not started", error = why })
        end
    end
    return D
end

-- Signals: SIGTERM and SIGINT stop (transfers in flight get the grace, then what is
-- left stays spooled), SIGHUP reloads every script, SIGUSR1 logs each product's state.
-- Returns stop(reason) and the list of handles it closes once stopped (more may join).
local function handle_signals(D)
    local handles = {}
    local function stop(signal)
        if D.stopping then return end
        D.stopping = true
        log.info({ msg = "stopping", signal = signal })
        samplers.stop(D)
        -- what arrived until now is kept with the states saved below
        statsd.stop(D)
        async.drain(M.GRACE, function() return next(async.in_flight) == nil end, function()
            for req in pairs(async.in_flight) do req:cancel() end
            for _, p in ipairs(D.products) do
                if p.timer then p.timer:close() end
                p.spool:persist()
                runner.save(D, p)
            end
            for _, h in ipairs(handles) do h:close() end
            core.stop()
        end)
    end
    handles[#handles + 1] = core.signal("SIGTERM", stop)
    handles[#handles + 1] = core.signal("SIGINT", stop)
    handles[#handles + 1] = core.signal("SIGHUP", function()
        log.info({ msg = "reloading every script", signal = "SIGHUP" })
        reload.rescan(D, nil)
    end)
    handles[#handles + 1] = core.signal("SIGUSR1", function()
        for _, p in ipairs(D.products) do log.info(runner.state_line(p)) end
    end)
    return stop, handles
end

-- --once: every product's report now; stops when none is being built or delivered.
-- The exit code: 1 when a report failed or was left undelivered.
local function run_once(D, stop)
    local pending = #D.products
    for _, p in ipairs(D.products) do
        async.spawn(function()
            runner.report(D, p)
            pending = pending - 1
            if pending == 0 then stop("--once") end
        end)
    end
    core.run()
    for _, p in ipairs(D.products) do
        if p.failed or (p.sending and not D.dry_run and p.spool:depth() > 0) then return 1 end
    end
    return 0
end

-- run(ctx) -> exit code. ctx: scripts, data_dir, options, from_set, from_config, pid,
-- product names (args), flags (after --).
function M.run(ctx)
    local scale = tonumber(ctx.options["time-scale"] or 1)
    -- bounded, so that no due time or delay it makes is beyond what timers and dates hold
    if not scale or not (scale >= M.MIN_SCALE and scale <= M.MAX_SCALE) then
        io.stderr:write("phonehome: --time-scale: expected a positive number, from ",
            M.MIN_SCALE, " to ", string.format("%.0f", M.MAX_SCALE), "\n")
        return 2
    end
    local ok, err = datadir.writable(ctx.data_dir)
    if not ok then
        io.stderr:write("phonehome: data directory ", ctx.data_dir, " is not writable: ", err, "\n")
        return 1
    end
    local D = load_products(ctx, scale)
    if #D.products == 0 then
        io.stderr:write("phonehome: no product could be started\n")
        return 1
    end
    local stop, handles = handle_signals(D)
    if not D.once then
        -- armed before any product says it started: a script changed after that line is
        -- seen; the watch is closed with the signals when the daemon stops
        handles[#handles + 1] = watch.start(ctx.scripts, function(changed)
            reload.rescan(D, changed)
        end)
    end
    for _, p in ipairs(D.products) do runner.start(D, p) end
    if not D.once then
        samplers.rearm(D)
        statsd.configure(D)
    end
    local code = 0
    if D.once then
        code = run_once(D, stop)
    else
        core.run()
    end
    for _, p in ipairs(D.products) do p.product:close() end
    log.info({ msg = "stopped" })
    return code
end

return M
