-- `make run`'s products: starts a fixture of each bundled product (demo/products.lua),
-- writes the phonehome --config that points each script at its product, then gives the
-- products new figures every few seconds until SIGINT or SIGTERM, when it stops them all.
-- usage: lua5.4 demo/run.lua BUILD DIR [SECONDS between changes, default 5]
-- Writes DIR/pids and DIR/products.conf once everything is up, DIR/step after each change.
local build, dir, seconds = arg[1], arg[2], tonumber(arg[3] or 5)
-- only this tree's modules (the fixtures are the specs'), never LUA_PATH's
package.path = "./?.lua;spec/?.lua;lib/?.lua;lib/?/init.lua"
package.cpath = build .. "/lib/?.so;" .. package.cpath
local core = require("phonehome.core")
local h = require("support.helper")
local postgres = require("support.postgres")
local products = require("demo.products")

local function say(...)
    local parts = table.pack(...)
    for i = 1, parts.n do parts[i] = tostring(parts[i]) end
    io.stderr:write("demo: ", table.concat(parts, "", 1, parts.n), "\n")
    io.stderr:flush()
end

-- absolute, as the products' config files name their files
if dir:sub(1, 1) ~= "/" then dir = h.sh("pwd") .. "/" .. dir end
assert(core.mkdir(dir, 493))
-- the fixtures' own directories go under dir too, where make run's files are (PostgreSQL
-- keeps its own under /tmp, which its user `nobody` can always reach)
h.tmp_root = dir
local started, pg = {}, nil
local function stop_all()
    for i = #started, 1, -1 do pcall(started[i].stop) end
    if pg then pg.stop() end
    h.cleanup()
end

local ok, err = pcall(function()
    if core.exists("/usr/lib/postgresql/15/bin/initdb") then
        pg = postgres.start()
        say("PostgreSQL 15 on 127.0.0.1:", pg.port, " for Electric and MongooseIM")
    else
        say("no PostgreSQL 15: Electric has no database; MongooseIM has no cluster id")
    end
    local conf = { "-- written by demo/run.lua: every product pointed at its fixture", "return {" }
    for _, name in ipairs(products.ORDER) do
        local p = products[name](dir, pg)
        if p then
            p.name = name
            started[#started + 1] = p
            local keys = {}
            for k in pairs(p.settings) do keys[#keys + 1] = k end
            table.sort(keys)
            local items = {}
            for _, k in ipairs(keys) do
                items[#items + 1] = string.format("[%q] = %s", k, type(p.settings[k]) == "string"
                    and string.format("%q", p.settings[k]) or tostring(p.settings[k]))
            end
            conf[#conf + 1] = string.format("    %s = { %s },", name, table.concat(items, ", "))
            say(name, " started")
        end
    end
    conf[#conf + 1] = "}"
    -- what runs, for whoever checks that a stop leaves nothing behind
    local pids = {}
    for _, p in ipairs(started) do
        for _, pid in ipairs(p.pids) do pids[#pids + 1] = tostring(pid) end
    end
    if pg then pids[#pids + 1] = h.slurp(pg.dir .. "/data/postmaster.pid"):match("^%d+") end
    h.write(dir .. "/pids", table.concat(pids, "\n") .. "\n")
    h.write(dir .. "/products.conf.tmp", table.concat(conf, "\n") .. "\n")
    assert(os.rename(dir .. "/products.conf.tmp", dir .. "/products.conf"))
end)
if not ok then
    say("could not start the products: ", tostring(err))
    stop_all()
    os.exit(1)
end

local step, timer = 0, nil
local function tick()
    step = step + 1
    for _, p in ipairs(started) do
        local t0 = core.monotonic()
        local done, why = pcall(p.change, step)
        if not done then say(p.name, ": no change: ", tostring(why)) end
        -- a signal waits for the step under way: a slow one says so
        local took = core.monotonic() - t0
        if took > 2 then say(p.name, ": step ", step, " took ", string.format("%.1f s", took)) end
    end
    h.write(dir .. "/step", step .. "\n")
end
local function arm()
    timer = core.timer(math.floor(seconds * 1000), function()
        tick()
        arm()
    end)
end
arm()

-- make run's Ctrl-C brings SIGINT and SIGTERM at once: the handlers stay until every
-- product is stopped, so that the second signal cannot end this before it is done
local stopping = false
local function stop()
    if stopping then return end
    stopping = true
    say("stopping")
    if timer then timer:close() end
    core.stop()
end
local signals = { core.signal("SIGTERM", stop), core.signal("SIGINT", stop) }
core.run()
stop_all()
for _, s in ipairs(signals) do s:close() end
say("stopped")
