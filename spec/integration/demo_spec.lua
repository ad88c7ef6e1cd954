-- `make run`'s products (demo/run.lua), started as `make run` starts them: phonehome
-- reads real figures from each fixture with the config it writes, the figures change,
-- and a stop leaves nothing running. #integration
local json = require("phonehome.json")
local h = require("support.helper")
local synapse = require("fixtures.synapse.fixture")

describe("make run's products #integration", function()
    setup(h.lock_bundled)
    teardown(h.unlock_bundled)
    local demo, dir
    after_each(function()
        -- a test that failed leaves nothing running either: the demo stops what it started
        -- (PostgreSQL's cluster too), else whatever it wrote down is killed
        if demo then
            h.sh("kill -TERM " .. demo.pid .. " 2>/dev/null")
            pcall(h.exit_code, demo, 60)
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
        local function step()
            local f = io.open(dir .. "/step")
            local n = f and tonumber(f:read("a")) or 0
            if f then f:close() end
            return n
        end
        -- read where each product keeps them: no figure left to a default. Synapse's rows:
        -- the fixture's, and per step done a native user active today, a room, a message
        -- sent in it (a step writes them in one transaction; one may be under way while
        -- show reads)
        local first = step()
        local s = show("synapse")
        local last = step() + 1
        local added = s.total_users - synapse.expected.total_users
        assert.is_true(added >= first and added <= last, tostring(s.total_users))
        local per_step = { total_users = 1, total_nonbridged_users = 1, total_room_count = 1,
                           daily_user_type_native = 1, daily_active_users = 1,
                           monthly_active_users = 1, daily_messages = 1,
                           daily_sent_messages = 1, daily_active_rooms = 1 }
        for k, v in pairs(synapse.expected) do
            assert.are.equal(v + added * (per_step[k] or 0), s[k], k)
        end
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
            assert.are.equal("0.12.1", el.data.electric_version)
        else
            h.has("no PostgreSQL 15: Electric has no database", h.slurp(demo.err))
        end
        -- the figures change: at each step, in each product, a figure that only grows
        local function figures()
            local out = { synapse = show("synapse"), eventstoredb = show("eventstoredb"),
                          coroot = show("coroot"), mongooseim = show("mongooseim") }
            if has_pg then out.electric = show("electric") end
            return out
        end
        local function sent(report)
            for _, ev in ipairs(report.events) do
                if ev.name == "xmpp_stanza_count" and ev.params.stanza_type == "xmppMessageSent"
                then return ev.params.total end
            end
        end
        local growing = {
            ["synapse total_users"] = function(f) return f.synapse.total_users end,
            ["synapse total_room_count"] = function(f) return f.synapse.total_room_count end,
            ["eventstoredb activeChunkNumber"] = function(f)
                return f.eventstoredb.database.activeChunkNumber
            end,
            ["coroot deployments"] = function(f) return f.coroot.infra.deployments end,
            ["mongooseim messages sent"] = function(f) return sent(f.mongooseim) end,
        }
        if has_pg then
            growing["electric electrified_tables"] = function(f)
                return f.electric.data.usage.electrified_tables
            end
        end
        local before, at = figures(), step()
        -- a whole step begun after those readings
        h.wait_until(function() return step() > at + 1 end, "the next change", 60)
        local after = figures()
        for name, read in pairs(growing) do
            local was, now = read(before), read(after)
            assert.is_number(was, name)
            assert.is_true(was >= 1 and now > was,
                           name .. ": " .. tostring(was) .. " then " .. tostring(now))
        end
        -- stopped, it leaves nothing running: stand-ins, servers, PostgreSQL
        local pids = {}
        for pid in h.slurp(dir .. "/pids"):gmatch("%d+") do pids[#pids + 1] = pid end
        -- two each for Synapse, EventStoreDB, Coroot; MongooseIM's API; Electric and PG
        assert.are.equal(has_pg and 9 or 7, #pids)
        -- as Ctrl-C in make run: SIGINT to every process, then SIGTERM from make's trap
        -- while the products are being stopped
        h.sh("kill -INT " .. demo.pid)
        -- after the step under way, however long the machine's load makes it
        h.wait_for(demo.err, "demo: stopping\n", 120)
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
