-- Reloading scripts while the daemon runs: a changed script's new version replaces the
-- running one only once it has loaded, checked and built one report; a new script starts
-- its product, a removed one stops it. Driven by the watch on the scripts directory
-- (daemon/watch.lua) and by SIGHUP.
local async = require("phonehome.base.async")
local log = require("phonehome.base.log")
local runner = require("phonehome.daemon.runner")
local samplers = require("phonehome.daemon.samplers")
local statsd = require("phonehome.daemon.statsd")
local sandbox = require("phonehome.sandbox")

local M = {}

-- Loads a product's script again. The record stays, so schedule state, spool, timer and
-- identity carry over; a changed schedule applies from the next due time, an endpoint
-- from the next send, an opt-out at once. On any failure the running version stays.
local function reload(D, p)
    local fresh, why = runner.load_version(D, p.name)
    if fresh then
        -- built as the running version's next report would be, on a copy of its state
        fresh.state = { last_sent = p.state.last_sent, process = p.state.process }
        fresh.previous = p.previous
        local body, problems = runner.build(D, fresh, true)
        if not body then
            fresh.product:close()
            fresh, why = nil, table.concat(problems, "; ")
        end
    end
    if not fresh then
        p.state.reload_error = why
        runner.save(D, p)
        log.error({ product = p.name, msg = "reload failed; the running version stays",
                    error = why })
        return
    end
    local was_sending = p.sending
    p.product:close()
    p.product, p.def, p.settings = fresh.product, fresh.def, fresh.settings
    p.sending, p.reason = fresh.sending, fresh.reason
    p.state.reloads = (p.state.reloads or 0) + 1
    p.state.reload_error = nil
    runner.save(D, p)
    log.info({ product = p.name, msg = "reloaded", sending = tostring(p.sending), reason = p.reason,
               reloads = p.state.reloads, version = p.def.version })
    if not was_sending then runner.resume_sending(D, p) end
end

-- Reads the scripts directory again for the given products (a set; every product when
-- nil): changed scripts reload, new ones start, removed ones stop. Runs in a coroutine:
-- loading and the dry build wait for their processes while the loop goes on.
local function rescan(D, names)
    local present = {}
    for _, n in ipairs(sandbox.names(D.ctx.scripts)) do present[n] = true end
    local running = {}
    for _, p in ipairs(D.products) do running[p.name] = p end
    local wanted = names
    if not wanted then
        wanted = {}
        for n in pairs(present) do wanted[n] = true end
        for n in pairs(running) do wanted[n] = true end
    end
    local sorted = {}
    for n in pairs(wanted) do sorted[#sorted + 1] = n end
    table.sort(sorted)
    for _, name in ipairs(sorted) do
        local p = running[name]
        if D.only and not D.only[name] then
            -- the command line named other products: this one is not ours to start
            log.info({ product = name,
                       msg = "script changed; not run here (not named on the command line)" })
        elseif p and present[name] then
            reload(D, p)
        elseif p then
            runner.stop(D, p)
        elseif present[name] then
            local fresh, why = runner.load(D, name)
            if fresh then
                D.products[#D.products + 1] = fresh
                runner.start(D, fresh)
            else
                log.error({ product = name, msg = "product not started", error = why })
            end
        end
    end
end

-- rescan(D, names): rescans as above, one rescan at a time; what changes meanwhile is
-- gathered into the next one.
function M.rescan(D, names)
    if D.rescanning then
        if names == nil or D.rescan_next == false then
            D.rescan_next = false   -- everything
        else
            D.rescan_next = D.rescan_next or {}
            for n in pairs(names) do D.rescan_next[n] = true end
        end
        return
    end
    D.rescanning = true
    async.spawn(function()
        local wanted = names
        repeat
            local ok, err = pcall(rescan, D, wanted)
            if not ok then log.error({ msg = "rescan failed", error = tostring(err) }) end
            wanted = D.rescan_next
            D.rescan_next = nil
        until wanted == nil
        -- samplers and metrics added, changed or gone
        samplers.rearm(D)
        statsd.configure(D)
        D.rescanning = false
    end)
end

return M
