-- `make run`'s products (demo/run.lua), started as `make run` starts them: phonehome
-- reads real figures from each fixture with the config it writes, the figures change,
-- and a stop leaves nothing running. #integration
local json = require("phonehome.json")
local h = require("support.helper")

describe("make run's products #integration", function()
    setup(h.lock_bundled)
    teardown(h.unlock_bundled)
    local demo, dir
    after_each(function()
        -- a test that failed leaves nothing running either
        if demo then
            h.sh("kill -9 " .. demo.pid .. " 2>/dev/null")
            local f = io.open(dir .. "/pids")
            for pid in (f and f:read("a") or ""):gmatch("%d+") do
                h.sh("kill " .. pid .. " 2>/dev/null")
            end
            if f then f:close() end
        end
        h.cleanup()
    end)

    it("gives every bundled product real figures that change, and stops them all at Ctrl-C",
       function()
        dir = h.tmpdir()
        -- a change every second
        demo = h.spawn_shell("PHONEHOME_BUILD=" .. h.quote(h.build) .. " lua5.4 demo/run.lua "
            .. h.quote(h.build) .. " " .. h.quote(dir) .. " 1")
        local conf = dir .. "/products.conf"
        h.wait_until(function()
            local f = io.open(conf)
            if f then f:close() end
            return f ~= nil or h.slurp(demo.err):find("could not start", 1, true)
        end, "the products", 120)
        assert.is_nil(h.slurp(demo.err):find("could not start", 1, true), h.slurp(demo.err))
        local function show(product)
            local r = h.run({ "show", product, "--config", conf, "--data-dir", dir .. "/data" },
                            nil, 60)
            assert.are.equal(0, r.code, r.err)
            return json.decode(r.out), r.err
        end
        -- read where each product keeps them: no figure left to a default
        local s = show("synapse")
        assert.is_true(s.total_users >= 8 and s.total_room_count == 3, tostring(s.total_users))
        assert.are.same({ "example.org", "3.11.4", "sqlite3" },
                        { s.homeserver, s.python_version, s.database_engine })
        local e = show("eventstoredb")
        assert.are.equal("23.10.0.0", e.version)
        assert.are.equal(29, e.database.epochNumber)
        local c = show("coroot")
        assert.are.same({ "2c4f4a4e-9d7e-4b7c-8b8e-3f1a5d6c7b8a", "sqlite" },
                        { c.instance.uuid, c.instance.database_type })
        local m = show("mongooseim")
        assert.are.equal("6d1f3c2a-5b4e-4f7a-9c8d-1e2f3a4b5c6d", m.client_id)
        local cluster
        for _, ev in ipairs(m.events) do
            if ev.name == "cluster" then cluster = ev.params end
        end
        assert.are.equal("6.2.1-8-g1c3ad2a", cluster.version)
        local has_pg = h.sh("test -x /usr/lib/postgresql/15/bin/initdb && echo yes") == "yes"
        if has_pg then
            local el = show("electric")
            assert.matches("^15%.", el.data.environment.pg_version)
            assert.are.equal("5a1f0c2e-7d3b-4c6a-9e8f-0b1c2d3e4f5a",
                             el.data.environment.electric_cluster_uuid)
        end
        -- the figures change: a user registers at each step
        local function step()
            local f = io.open(dir .. "/step")
            local n = f and tonumber(f:read("a")) or 0
            if f then f:close() end
            return n
        end
        local users, at = show("synapse").total_users, step()
        h.wait_until(function() return step() > at + 1 end, "the next change", 60)
        assert.is_true(show("synapse").total_users > users)
        -- stopped, it leaves nothing running: stand-ins, servers, PostgreSQL
        local pids = {}
        for pid in h.slurp(dir .. "/pids"):gmatch("%d+") do pids[#pids + 1] = pid end
        assert.is_true(#pids >= 8, #pids .. " processes")
        -- as Ctrl-C in make run: SIGINT to every process, then SIGTERM from make's trap
        -- while the products are being stopped
        h.sh("kill -INT " .. demo.pid)
        h.wait_for(demo.err, "demo: stopping\n")
        h.sh("kill -TERM " .. demo.pid)
        assert.are.equal(0, h.exit_code(demo, 60))
        demo = nil
        for _, pid in ipairs(pids) do
            h.wait_until(function()
                local f = io.open("/proc/" .. pid .. "/cmdline")
                local alive = f and f:read("a") ~= ""
                if f then f:close() end
                return not alive
            end, "process " .. pid .. " to end", 60)
        end
    end)
end)
