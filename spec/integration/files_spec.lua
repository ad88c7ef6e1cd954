-- Files and settings that are wrong, and products that touch only their own files: the
-- real binary against durations out of range, state and spool files it cannot use, a
-- scripts directory replaced under it, hand-edited ids, names that reach outside a
-- product's directory and the data directory's old layout. #integration
local json = require("phonehome.json")
local h = require("support.helper")

local FIELD = '{ name = "n", type = "int", description = "d", value = 1 },'
local ID_FIELD = '{ name = "id", type = "string", description = "d", '
    .. 'value = function(ctx) return ctx.instance_id end },'

-- Writes a test product's script into dir; extra is more of its top level.
local function product(dir, name, extra, fields)
    return h.write(dir .. "/" .. name .. ".lua", h.script(name, fields or FIELD, extra))
end

local function status(args)
    local r = h.run(args)
    local rows = {}
    for line in r.out:gmatch("[^\n]+") do
        local row = json.decode(line)
        rows[row.product] = row
    end
    return rows, r
end

describe("durations #integration", function()
    setup(h.lock_bundled)
    teardown(h.unlock_bundled)
    after_each(h.cleanup)

    -- each: the script's text, the key and the value the error must name
    local bad = {
        { 'schedule = { first = "5m", interval = "99999999999999999s" },', "schedule.interval",
          '"99999999999999999s"' },
        { 'schedule = { first = "5m", interval = 0 },', "schedule.interval", "0" },
        { 'schedule = { first = "5m", interval = "0s" },', "schedule.interval", '"0s"' },
        { 'schedule = { first = -1, interval = "1h" },', "schedule.first", "-1" },
        { 'schedule = { first = "3651d", interval = "1h" },', "schedule.first", '"3651d"' },
        { 'schedule = { first = "5m", interval = "1h", jitter = "100000000h" },',
          "schedule.jitter", '"100000000h"' },
        { 'schedule = { first = "5m", interval = "1h", send_delay = math.maxinteger },',
          "schedule.send_delay", "9223372036854775807" },
        { 'schedule = { first = "5m", interval = 315360000001 },', "schedule.interval",
          "315360000001" },
        { 'delivery = { timeout = "0ms" },', "delivery.timeout", '"0ms"' },
        { 'delivery = { backoff = "4000d" },', "delivery.backoff", '"4000d"' },
        { 'delivery = { connect_timeout = 0 },', "delivery.connect_timeout", "0" },
        { 'settings = { { name = "every", type = "int", default = 0, description = "d" } },'
              .. 'schedule = { first = "5m", interval = { setting = "every" } },',
          "schedule.interval", "0" },
        { 'settings = { { name = "every", type = "string", default = "1e9d", description = "d" } },'
              .. 'schedule = { first = "5m", interval = { setting = "every" } },',
          "schedule.interval", '"1e9d"' },
    }
    for _, case in ipairs(bad) do
        it("check refuses " .. case[1], function()
            local dir = h.tmpdir()
            product(dir, "t", case[1])
            local r = h.run({ "check", "--scripts", dir })
            assert.are.equal(1, r.code)
            h.has(dir .. "/t.lua:", r.err)
            h.has(case[2], r.err)
            h.has(case[3], r.err)
        end)
    end

    it("accepts first, jitter and send_delay of 0 and an interval of 10 years", function()
        local dir = h.tmpdir()
        product(dir, "t", 'schedule = { first = "0s", interval = "3650d", jitter = 0, '
            .. 'send_delay = "0ms" },')
        local r = h.run({ "check", "--scripts", dir })
        assert.are.equal("", r.err)
        assert.are.equal(0, r.code)
    end)

    it("refuses a duration setting out of range from --set, naming it, in every command",
        function()
        for _, v in ipairs({ "0", "-5", "999999999999999999", "315360000001" }) do
            local set = "mongooseim.periodic_report=" .. v
            for _, args in ipairs({
                { "check", "--set", set },
                { "show", "mongooseim", "--data-dir", h.tmpdir(), "--set", set },
                { "status", "mongooseim", "--data-dir", h.tmpdir(), "--set", set },
                { "run", "mongooseim", "--once", "--dry-run", "--data-dir", h.tmpdir(),
                  "--set", set },
            }) do
                local r = h.run(args)
                assert.are.equal(1, r.code, args[1] .. " " .. set)
                local text = r.err .. r.out
                h.has("mongooseim.periodic_report", text)
                h.has(v, text)
                h.has("schedule.interval", text)
            end
        end
        -- a first report may be due at once, not before
        assert.are.equal(0, h.run({ "check", "--set", "mongooseim.initial_report=0" }).code)
        local r = h.run({ "check", "--set", "mongooseim.initial_report=-1" })
        assert.are.equal(1, r.code)
        h.has("mongooseim.initial_report", r.err)
        h.has("-1", r.err)
    end)

    it("refuses a duration setting out of range from --config", function()
        local cfg = h.write(h.tmpdir() .. "/c.lua",
            "return { mongooseim = { periodic_report = -1 } }")
        local r = h.run({ "check", "--config", cfg })
        assert.are.equal(1, r.code)
        h.has("--config mongooseim.periodic_report", r.err)
        h.has("-1", r.err)
        h.has("schedule.interval", r.err)
    end)

    it("refuses a string duration setting it cannot read or that is out of range", function()
        local dir = h.tmpdir()
        product(dir, "t", 'settings = { { name = "every", type = "string", default = "1h", '
            .. 'description = "d" } }, schedule = { first = "5m", '
            .. 'interval = { setting = "every" } },')
        assert.are.equal(0, h.run({ "check", "--scripts", dir }).code)
        for _, v in ipairs({ "0s", "banana", "4000d" }) do
            local r = h.run({ "check", "--scripts", dir, "--set", "t.every=" .. v })
            assert.are.equal(1, r.code)
            h.has("--set t.every", r.err)
            h.has(v, r.err)
        end
    end)

    it("refuses a time scale that would make delays no timer can hold", function()
        for _, scale in ipairs({ "1e-14", "0", "inf", "nan", "1e300" }) do
            local r = h.run({ "run", "--dry-run", "--time-scale", scale, "--data-dir",
                             h.tmpdir() })
            assert.are.equal(2, r.code, scale)
            h.has("--time-scale", r.err)
        end
    end)

    it("runs with the longest delays the bounds allow", function()
        local data = h.tmpdir()
        local d = h.spawn({ "run", "mongooseim", "--dry-run", "--data-dir", data,
                            "--time-scale", "0.001",
                            "--set", "mongooseim.initial_report=315360000000" })
        h.wait_for(d.err, 'product=mongooseim msg="next report" due=%d%d%d%d%d')
        h.sh("kill -TERM " .. d.pid)
        assert.are.equal(0, h.exit_code(d))
        assert.is_nil(h.slurp(d.err):find("error", 1, true))
    end)
end)

describe("a state file of the wrong shape #integration", function()
    setup(h.lock_bundled)
    teardown(h.unlock_bundled)
    after_each(h.cleanup)

    local shapes = { '{"last_sent":"abc"}', '{"next_due":1e999}', '{"last_sent":1e999}',
                     "[1,2,3]", "[]", '"text"', "42", '{"last_sent":-5}', '{"reloads":1.5}',
                     '{"reloads":"x"}', '{"last_result":{}}', '{"process":{"pid":"x"}}',
                     '{"process":7}', '{"next_due":1e300}', "not json{" }

    it("is set aside with a warning; that product starts afresh, the others as usual",
        function()
        local ep = h.endpoint("201")
        local scripts, data = h.tmpdir(), h.tmpdir()
        local sched = 'schedule = { first = "100ms", interval = "1h", anchor = "previous" },'
        product(scripts, "good", sched)
        h.sh("mkdir -p " .. data .. "/good")
        h.write(data .. "/good/state.json", '{"last_sent":1000,"reloads":2}')
        for i, text in ipairs(shapes) do
            product(scripts, "p" .. i, sched)
            h.sh("mkdir -p " .. data .. "/p" .. i)
            h.write(data .. "/p" .. i .. "/state.json", text)
        end
        -- in the old layout's place too
        product(scripts, "old", sched)
        h.write(data .. "/old.state.json", '{"next_due":"soon"}')
        -- status reads them without failing and without changing them
        local rows, r = status({ "status", "--scripts", scripts, "--data-dir", data, "--json" })
        assert.are.equal(0, r.code, r.err)
        for i, text in ipairs(shapes) do
            local row = rows["p" .. i]
            assert.is_true(row.sending, text)
            assert.matches("state%.json", row.state_error, 1)
            assert.are.equal(text, h.slurp(data .. "/p" .. i .. "/state.json"))
        end
        assert.is_nil(rows.good.state_error)
        assert.are.equal(2, rows.good.reloads)
        h.has("is not valid", h.run({ "status", "p1", "--scripts", scripts, "--data-dir",
                                      data }).out)

        local d = h.spawn({ "run", "--scripts", scripts, "--data-dir", data,
                            "--endpoint", ep.url })
        local names = { "good", "old" }
        for i = 1, #shapes do names[#names + 1] = "p" .. i end
        for _, name in ipairs(names) do
            h.wait_for(d.err, "product=" .. name .. ' msg="report sent"')
        end
        h.sh("kill -TERM " .. d.pid)
        assert.are.equal(0, h.exit_code(d))
        local log = h.slurp(d.err)
        assert.is_nil(log:find("internal error", 1, true))
        for i, text in ipairs(shapes) do
            local dir = data .. "/p" .. i
            h.has('product=p' .. i .. ' msg="state file is not valid; set aside"', log)
            h.has("file=" .. dir .. "/state.json", log)
            local aside = h.sh("ls " .. dir .. " | grep '^state.json.bad-'")
            assert.are_not.equal("", aside, text)
            assert.are.equal(text, h.slurp(dir .. "/" .. aside))
            assert.is_number(json.decode(h.slurp(dir .. "/state.json")).last_sent)
        end
        h.has('product=old msg="state file is not valid; set aside"', log)
        -- the good one kept its state: its reload count carried over
        assert.are.equal(2, json.decode(h.slurp(data .. "/good/state.json")).reloads)
        rows = status({ "status", "--scripts", scripts, "--data-dir", data, "--json" })
        for _, name in ipairs(names) do
            assert.is_nil(rows[name].state_error)
            assert.is_string(rows[name].last_sent)
        end
        ep.stop()
    end)
end)

describe("a spool file it cannot read #integration", function()
    setup(h.lock_bundled)
    teardown(h.unlock_bundled)
    after_each(h.cleanup)

    it("is logged and set aside, never counted, and status counts what would be sent",
        function()
        local ep = h.endpoint("201")
        local scripts, data = h.tmpdir(), h.tmpdir()
        product(scripts, "t")
        local spool = data .. "/t/spool"
        h.sh("mkdir -p " .. spool)
        local big = spool .. "/00000000000000000001-aaaa.json"
        h.sh("head -c 17000000 /dev/zero | tr '\\000' ' ' > " .. big)
        h.write(spool .. "/00000000000000000002-bbbb.json", '{"n":2}')
        local dir = spool .. "/00000000000000000003-cccc.json"
        h.sh("mkdir " .. dir)
        local rows, r = status({ "status", "t", "--scripts", scripts, "--data-dir", data,
                                 "--json" })
        assert.are.equal(0, r.code, r.err)
        assert.are.equal(1, rows.t.spool)
        assert.are.equal(2, rows.t.spool_unreadable)

        r = h.run({ "run", "t", "--once", "--scripts", scripts, "--data-dir", data,
                    "--endpoint", ep.url })
        assert.are.equal(0, r.code, r.err)
        local keys = {}
        for _, req in ipairs(ep.requests()) do keys[#keys + 1] = req.key end
        assert.are.equal(2, #keys)
        assert.are.equal("bbbb", keys[1])
        for _, f in ipairs({ big, dir }) do
            h.has('level=warn product=t msg="spooled report cannot be read; set aside"', r.err)
            h.has(" file=" .. f .. " moved_to=" .. f .. ".bad-", r.err)
            assert.is_false(h.sh("test -e " .. f .. " && echo yes") == "yes")
            assert.are_not.equal("", h.sh("ls -d " .. f .. ".bad-*"))
        end
        rows = status({ "status", "t", "--scripts", scripts, "--data-dir", data, "--json" })
        assert.are.equal(0, rows.t.spool)
        assert.are.equal(0, rows.t.spool_unreadable)
        ep.stop()
    end)
end)

describe("a scripts directory deleted and recreated #integration", function()
    setup(h.lock_bundled)
    teardown(h.unlock_bundled)
    local ep, d, scripts
    before_each(function()
        ep = h.endpoint("201")
        scripts = h.tmpdir()
        product(scripts, "a", 'schedule = { first = "100ms", interval = "300ms" },')
        d = h.spawn({ "run", "--scripts", scripts, "--data-dir", h.tmpdir(),
                      "--endpoint", ep.url })
        h.wait_for(d.err, 'product=a msg="report sent"')
    end)
    after_each(function()
        h.sh("kill -TERM " .. d.pid)
        local ok, code = pcall(h.exit_code, d)
        h.sh("kill -9 " .. d.pid .. " 2>/dev/null")
        assert.is_true(ok, code)
        assert.are.equal(0, code)
        ep.stop()
        h.cleanup()
    end)

    local function sent_by(name)
        local n = 0
        for _, req in ipairs(ep.requests()) do
            if req.path == "/v1/report/" .. name then n = n + 1 end
        end
        return n
    end

    it("is watched again once it is back, and its new scripts start", function()
        h.sh("rm -rf " .. scripts)
        h.wait_for(d.err, 'msg="the watch on the scripts directory ended; watching it again '
            .. 'once the directory exists" dir=' .. scripts:gsub("%p", "%%%0")
            .. ' error="the directory was removed or replaced"')
        h.wait_for(d.err, 'product=a msg="stopped: its script was removed"')
        h.sh("sleep 1.5")
        h.sh("mkdir " .. scripts)
        product(scripts, "b", 'schedule = { first = "100ms", interval = "300ms" },')
        h.wait_for(d.err, 'msg="watching the scripts directory again"')
        h.wait_for(d.err, 'product=b msg="report sent"')
        -- and the new watch sees changes
        product(scripts, "c", 'schedule = { first = "100ms", interval = "300ms" },')
        h.wait_for(d.err, 'product=c msg="report sent"')
        assert.is_true(sent_by("b") >= 1)
    end)

    it("is watched again when it is replaced at once", function()
        h.sh("rm -rf " .. scripts .. " && mkdir " .. scripts)
        product(scripts, "b", 'schedule = { first = "100ms", interval = "300ms" },')
        h.wait_for(d.err, 'product=b msg="report sent"')
        product(scripts, "c", 'schedule = { first = "100ms", interval = "300ms" },')
        h.wait_for(d.err, 'product=c msg="report sent"')
        h.has('msg="watching the scripts directory again"', h.slurp(d.err))
    end)
end)

describe("instance ids #integration", function()
    setup(h.lock_bundled)
    teardown(h.unlock_bundled)
    after_each(h.cleanup)

    it("keeps an id written with a trailing newline or spaces, trimmed", function()
        local id = "6f1c8f0e-3c1a-4a8e-9b0a-2d8f6a1e5c47"
        for _, text in ipairs({ id .. "\n", id .. "  \n", "  " .. id .. "\r\n", id .. "\t" }) do
            local data = h.tmpdir()
            h.sh("mkdir -p " .. data .. "/coroot")
            h.write(data .. "/coroot/instance.uuid", text)
            local rows = status({ "status", "coroot", "--data-dir", data, "--json" })
            assert.are.equal(id, rows.coroot.instance_id)
            local r = h.run({ "show", "coroot", "--data-dir", data })
            assert.are.equal(0, r.code, r.err)
            assert.are.equal(id, json.decode(r.out).instance.uuid)
            assert.is_nil(r.err:find("UUID", 1, true))
            assert.are.equal(text, h.slurp(data .. "/coroot/instance.uuid"))
        end
    end)
end)

describe("a product's own files #integration", function()
    setup(h.lock_bundled)
    teardown(h.unlock_bundled)
    after_each(h.cleanup)

    local names = {
        { 'identity = { file = "../reports.db" },', "identity.file", "../reports.db" },
        { 'identity = { file = "/tmp/x" },', "identity.file", "/tmp/x" },
        { 'identity = { file = ".." },', "identity.file", '".."' },
        { 'identity = { file = "state.json" },', "identity.file", "state.json" },
        { 'identity = { file = "spool" },', "identity.file", '"spool"' },
        { 'last_report = "../coroot/instance.uuid",', "last_report", "../coroot/instance.uuid" },
        { 'last_report = "state.json.bad-1",', "last_report", "state.json.bad-1" },
        { 'last_report = "x.json", identity = { file = "x.json" },', "last_report", "x.json" },
        { 'last_report = "instance.id",', "last_report", "instance.id" },
        { 'identity = { file = "last.json" },', "identity.file", "last.json" },
        { 'identity = { file = "id.tmp123" },', "identity.file", "id.tmp123" },
    }
    for _, case in ipairs(names) do
        it("check refuses " .. case[1], function()
            local dir = h.tmpdir()
            product(dir, "t", case[1])
            local r = h.run({ "check", "--scripts", dir })
            assert.are.equal(1, r.code)
            h.has(dir .. "/t.lua", r.err)
            h.has(case[2], r.err)
            h.has(case[3], r.err)
            -- nor does anything else run it
            r = h.run({ "show", "t", "--scripts", dir, "--data-dir", h.tmpdir() })
            assert.are.equal(1, r.code)
            h.has(case[2], r.err)
        end)
    end

    it("keeps a product's declared files in its own directory", function()
        local ep = h.endpoint("201")
        local data, scripts = h.tmpdir(), h.tmpdir()
        h.write(data .. "/reports.db", "the collector's")
        assert.are.equal(0, h.run({ "run", "coroot", "--once", "--data-dir", data,
                                    "--endpoint", ep.url }).code)
        local coroot_id = h.slurp(data .. "/coroot/instance.uuid")
        product(scripts, "t", 'identity = { file = "instance.uuid", field = "id" }, '
            .. 'last_report = "reports.db",', ID_FIELD)
        local r = h.run({ "run", "t", "--once", "--scripts", scripts, "--data-dir", data,
                          "--endpoint", ep.url })
        assert.are.equal(0, r.code, r.err)
        assert.are.equal("the collector's", h.slurp(data .. "/reports.db"))
        assert.are.equal(coroot_id, h.slurp(data .. "/coroot/instance.uuid"))
        local id = h.slurp(data .. "/t/instance.uuid")
        assert.are_not.equal(coroot_id, id)
        assert.are.equal(id, json.decode(h.slurp(data .. "/t/reports.db")).id)
        ep.stop()
    end)

    it("moves the files of the old layout into each product's directory, once", function()
        local ep = h.endpoint("201")
        local data = h.tmpdir()
        local coroot_id = "0b7d4f6c-1f7e-4f43-9d3e-5d0f8c2a9e11"
        local electric_id = "7a3e2b1c-9d8f-4e6a-8b5c-1f2e3d4c5b6a"
        h.write(data .. "/instance.uuid", coroot_id .. "\n")
        h.write(data .. "/electric.id", electric_id)
        h.write(data .. "/coroot.state.json", '{"last_sent":1000,"reloads":3}')
        h.write(data .. "/system_metrics_report.json", '{"client_id":"x","events":[]}')
        h.write(data .. "/reports.db", "the collector's")
        h.sh("mkdir -p " .. data .. "/spool/coroot")
        h.write(data .. "/spool/coroot/00000000000000000007-kkkk.json", '{"old":true}')
        -- status reads the old layout without moving anything
        local rows = status({ "status", "coroot", "electric", "--data-dir", data, "--json" })
        assert.are.equal(coroot_id, rows.coroot.instance_id)
        assert.are.equal(electric_id, rows.electric.instance_id)
        assert.are.equal(1, rows.coroot.spool)
        assert.are.equal(3, rows.coroot.reloads)
        assert.are.equal(coroot_id .. "\n", h.slurp(data .. "/instance.uuid"))

        -- MongooseIM's report is its node's (spec/fixtures/mongooseim)
        local api = h.endpoint("serve:spec/fixtures/mongooseim/api")
        finally(api.stop)
        local r = h.run({ "run", "coroot", "electric", "mongooseim", "--once",
                          "--data-dir", data, "--endpoint", ep.url,
                          "--set", "mongooseim.config=spec/fixtures/mongooseim/node.toml",
                          "--set", "mongooseim.graphql=" .. api.url .. "/graphql" })
        assert.are.equal(0, r.code, r.err)
        local seen = {}
        for _, req in ipairs(ep.requests()) do
            if req.key == "kkkk" then seen.old = true end
            local body = json.decode(req.body)
            if req.path == "/v1/report/coroot" and body.instance then
                seen.coroot = body.instance.uuid
            elseif req.path == "/v1/report/electric" then
                seen.electric = body.data.environment.electric_cluster_uuid
            end
        end
        assert.is_true(seen.old)
        assert.are.equal(coroot_id, seen.coroot)
        assert.are.equal(electric_id, seen.electric)
        assert.are.equal(coroot_id .. "\n", h.slurp(data .. "/coroot/instance.uuid"))
        assert.are.equal(electric_id, h.slurp(data .. "/electric/instance.id"))
        assert.are.equal(3, json.decode(h.slurp(data .. "/coroot/state.json")).reloads)
        assert.is_table(json.decode(h.slurp(data .. "/mongooseim/system_metrics_report.json")))
        for _, old in ipairs({ "instance.uuid", "electric.id", "coroot.state.json",
                               "system_metrics_report.json",
                               "spool/coroot/00000000000000000007-kkkk.json" }) do
            assert.are.equal("", h.sh("ls " .. data .. "/" .. old .. " 2>/dev/null"), old)
        end
        assert.are.equal("the collector's", h.slurp(data .. "/reports.db"))
        ep.stop()
    end)

    it("check refuses two products declaring the same identity file", function()
        local dir = h.tmpdir()
        h.sh("cp scripts/coroot.lua " .. dir)
        product(dir, "hello", 'identity = { file = "instance.uuid", field = "id" },', ID_FIELD)
        local r = h.run({ "check", "--scripts", dir })
        assert.are.equal(1, r.code)
        h.has(dir .. "/hello.lua", r.err)
        h.has('identity.file "instance.uuid"', r.err)
        h.has("coroot", r.err)
    end)

    it("passes check with the README's example beside the bundled products", function()
        local dir = h.tmpdir()
        h.sh("cp scripts/*.lua " .. dir)
        h.write(dir .. "/hello.lua", h.slurp("README.md"):match("```lua\n(.-)```"))
        -- Coroot's report measures its server process: an executable named coroot
        local bin = h.tmpdir() .. "/coroot"
        h.sh("cp /bin/sleep " .. bin)
        local coroot = h.sh(bin .. " 600 >/dev/null 2>&1 & echo $!")
        finally(function() h.sh("kill " .. coroot) end)
        local r = h.run({ "check", "--scripts", dir })
        assert.are.equal("", r.err)
        assert.are.equal(0, r.code)
    end)
end)
