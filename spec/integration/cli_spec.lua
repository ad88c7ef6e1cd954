-- The real binary: command line, exit codes, and a clear message for each bad input.
-- #integration
local json = require("phonehome.json")
local h = require("support.helper")

local function product_dir(name, fields, extra)
    local dir = h.tmpdir()
    h.write(dir .. "/" .. name .. ".lua", h.script(name, fields, extra))
    return dir
end

local function show_in(dir, name, more)
    local args = { "show", name, "--scripts", dir, "--data-dir", dir .. "/data" }
    for _, a in ipairs(more or {}) do args[#args + 1] = a end
    return h.run(args)
end

local good = '{ name = "n", type = "int", description = "d", value = function() return 1 end },'

describe("phonehome #integration", function()
    setup(h.lock_bundled)
    teardown(h.unlock_bundled)
    after_each(h.cleanup)

    describe("command line", function()
        it("prints help on --help and exits 0", function()
            local r = h.run({ "--help" })
            assert.are.equal(0, r.code)
            assert.matches("Usage: phonehome COMMAND", r.out)
            for _, c in ipairs({ "show", "docs", "check" }) do
                assert.matches("\n  " .. c, r.out)
            end
        end)

        it("prints its version", function()
            local r = h.run({ "--version" })
            assert.are.equal(0, r.code)
            assert.matches("^phonehome %d+%.%d+%.%d+\n$", r.out)
        end)

        for _, args in ipairs({ {}, { "frobnicate" }, { "show" }, { "show", "coroot", "--bogus" },
                                { "show", "coroot", "-x" }, { "docs", "coroot", "--pid", "1" },
                                { "show", "coroot", "--pid" }, { "show", "a", "b" } }) do
            it("exits 2 with usage on stderr for: " .. table.concat(args, " "), function()
                local r = h.run(args)
                assert.are.equal(2, r.code)
                assert.are.equal("", r.out)
                assert.matches("^phonehome: .+\n\nUsage:", r.err)
            end)
        end

        it("accepts options before the command and in --opt=value form", function()
            local dir = h.tmpdir()
            local r = h.run({ "--data-dir=" .. dir, "show", "coroot" })
            assert.are.equal(0, r.code)
            assert.is_table(json.decode(r.out))
        end)
    end)

    describe("show", function()
        it("prints one JSON document and nothing else", function()
            local r = h.run({ "show", "eventstoredb", "--data-dir", h.tmpdir() })
            assert.are.equal(0, r.code)
            assert.are.equal("", r.err)
            assert.matches("^{.*}\n$", r.out)
        end)

        it("fails on an unknown product, listing the known ones", function()
            local r = h.run({ "show", "nosuch" })
            assert.are.equal(1, r.code)
            assert.matches("unknown product 'nosuch' %(in .-: coroot, electric, eventstoredb, "
                .. "mongooseim, synapse%)", r.err)
        end)

        it("fails on a --pid that does not exist", function()
            local r = h.run({ "show", "synapse", "--pid", "999999999" })
            assert.are.equal(1, r.code)
            assert.matches("no process with pid 999999999", r.err)
            r = h.run({ "show", "synapse", "--pid", "abc" })
            assert.are.equal(1, r.code)
            assert.matches("not a process id", r.err)
        end)

        it("reads the target from --pidfile", function()
            local dir = h.tmpdir()
            local pid = h.sh("sleep 3 >/dev/null 2>&1 & echo $!")
            h.write(dir .. "/pid", pid .. "\n")
            local r = h.run({ "show", "synapse", "--pidfile", dir .. "/pid", "--data-dir", dir })
            assert.are.equal(0, r.code)
            assert.is_true(json.decode(r.out).uptime_seconds <= 3)
            h.write(dir .. "/pid", "garbage")
            r = h.run({ "show", "synapse", "--pidfile", dir .. "/pid" })
            assert.are.equal(1, r.code)
            assert.matches("does not hold a process id", r.err)
        end)
    end)

    describe("settings", function()
        it("applies --set over --config", function()
            local dir = h.tmpdir()
            h.write(dir .. "/c.lua", 'return { coroot = { ["profile.cpu"] = "1.0", '
                .. '["infra.nodes"] = 3 } }')
            local r = h.run({ "show", "coroot", "--data-dir", dir, "--config", dir .. "/c.lua",
                              "--set", "coroot.profile.cpu=2.0" })
            assert.are.equal(0, r.code)
            local out = json.decode(r.out)
            assert.are.equal("2.0", out.profile.cpu)
            assert.are.equal(3, out.infra.nodes)
        end)

        it("rejects an unknown product", function()
            local r = h.run({ "show", "coroot", "--set", "nosuch.x=1" })
            assert.are.equal(1, r.code)
            assert.matches("%-%-set: unknown product 'nosuch'", r.err)
        end)

        it("rejects an unknown setting, naming it", function()
            local r = h.run({ "show", "coroot", "--set", "coroot.colour=red" })
            assert.are.equal(1, r.code)
            assert.matches("coroot has no setting 'colour'", r.err)
        end)

        it("rejects a value of the wrong type, naming the setting", function()
            local r = h.run({ "show", "coroot", "--set", "coroot.infra.nodes=many" })
            assert.are.equal(1, r.code)
            assert.matches('%-%-set coroot.infra.nodes: expected int, got "many"', r.err)
            local dir = h.tmpdir()
            h.write(dir .. "/c.lua", 'return { coroot = { ["infra.nodes"] = "3" } }')
            r = h.run({ "show", "coroot", "--config", dir .. "/c.lua" })
            assert.are.equal(1, r.code)
            assert.matches('%-%-config: setting coroot.infra.nodes: expected int, got string "3"',
                r.err)
        end)

        it("rejects a malformed --set and a config file that is code or broken", function()
            assert.matches("expected PRODUCT.KEY=VALUE",
                h.run({ "show", "coroot", "--set", "oops" }).err)
            local dir = h.tmpdir()
            h.write(dir .. "/c.lua", "coroot = {")
            local r = h.run({ "show", "coroot", "--config", dir .. "/c.lua" })
            assert.are.equal(1, r.code)
            assert.matches("c%.lua:1:", r.err)
            h.write(dir .. "/c.lua", "os.execute('touch " .. dir .. "/pwned')")
            r = h.run({ "show", "coroot", "--config", dir .. "/c.lua" })
            assert.are.equal(1, r.code)
            assert.is_nil(io.open(dir .. "/pwned"))
            r = h.run({ "show", "coroot", "--config", dir .. "/missing.lua" })
            assert.are.equal(1, r.code)
            assert.matches("missing%.lua: No such file", r.err)
        end)
    end)

    describe("bad scripts fail with file:line and exit 1", function()
        local cases = {
            { "a syntax error", "{ name = 'n', type = 'int' description = 'd' },",
              "t%.lua:10: '}' expected" },
            { "an error while loading", "error('no config'),", "t%.lua:10: no config" },
            { "an infinite loop at load", "(function() while true do end end)(),",
              "t%.lua:10: script exceeded its time limit" },
            { "a memory bomb at load",
              "(function() local t = {} for i = 1, 1e9 do t[i] = {} end end)(),",
              "script exceeded its memory limit" },
            { "a field function that errors",
              "{ name = 'n', type = 'int', description = 'd', value = function() "
                .. "error('broken') end },",
              "t%.lua:10: field 'n': broken" },
            { "an infinite loop in a field",
              "{ name = 'n', type = 'int', description = 'd', value = function() "
                .. "while true do end end },",
              "t%.lua:10: field 'n': script exceeded its time limit of 1000 ms" },
            { "a memory bomb in a field",
              "{ name = 'n', type = 'int', description = 'd', value = function() "
                .. "local s = 'x' while true do s = s .. s end end },",
              "t%.lua:10: field 'n': script exceeded its memory limit" },
            { "a value of the wrong type",
              "{ name = 'n', type = 'int', description = 'd', value = function() "
                .. "return 'seven' end },",
              "t%.lua:10: field 'n': expected int, got string \"seven\"" },
            { "an undeclared key",
              "{ name = 'o', type = 'object', description = 'd', fields = {\n"
                .. "{ name = 'a', type = 'int', description = 'd' } },\n"
                .. "value = function() return { a = 1, email = 'x@y' } end },",
              "t%.lua:12: field 'o.email': key was not declared" },
            { "a missing required value",
              "{ name = 'n', type = 'int', description = 'd', value = function() return nil end },",
              "t%.lua:10: field 'n': missing required value" },
            { "an unknown field type",
              "{ name = 'n', type = 'integer', description = 'd', value = 1 },",
              "t%.lua:10: unknown type string \"integer\"" },
        }
        for _, c in ipairs(cases) do
            it(c[1], function()
                local dir = product_dir("t", c[2])
                local r = show_in(dir, "t")
                assert.are.equal(1, r.code)
                assert.are.equal("", r.out)
                assert.matches(c[3], r.err)
                r = h.run({ "check", dir .. "/t.lua" })
                assert.are.equal(1, r.code)
                assert.matches(c[3], r.err)
            end)
        end

        it("a bad duration", function()
            local dir = h.tmpdir()
            h.write(dir .. "/t.lua", (h.script("t", good):gsub('first = "5m"', 'first = "5 mins"')))
            local r = show_in(dir, "t")
            assert.are.equal(1, r.code)
            assert.matches('t%.lua:5: bad duration "5 mins"', r.err)
        end)

        it("a name that does not match the file", function()
            local dir = h.tmpdir()
            h.write(dir .. "/t.lua", h.script("other", good))
            local r = show_in(dir, "t")
            assert.are.equal(1, r.code)
            assert.matches("t%.lua:2: name 'other' does not match the file name 't.lua'", r.err)
        end)

        it("a nullable field that fails is logged and sent as null", function()
            local dir = product_dir("t", good .. "\n{ name = 'm', type = 'int', null = true, "
                .. "description = 'd', value = function() error('no source') end },")
            local r = show_in(dir, "t")
            assert.are.equal(0, r.code)
            assert.are.equal('{"n":1,"m":null}\n', r.out)
            assert.matches("level=warn product=t msg=\".-t%.lua:11: field 'm': no source\"", r.err)
        end)
    end)

    describe("check", function()
        it("passes every bundled script", function()
            local r = h.run({ "check" })
            assert.are.equal(0, r.code)
            for _, p in ipairs({ "coroot", "electric", "eventstoredb", "mongooseim", "synapse" }) do
                assert.matches(p .. "%.lua: ok", r.out)
            end
        end)

        it("lists every problem of every file and exits 1", function()
            local dir = h.tmpdir()
            h.write(dir .. "/a.lua", h.script("a", "{ name = 'x', type = 'int' },\n"
                .. "{ name = 'y', type = 'object', description = 'd' },"))
            h.write(dir .. "/b.lua", "return {")
            h.write(dir .. "/c.lua", h.script("c", good))
            local r = h.run({ "check", "--scripts", dir })
            assert.are.equal(1, r.code)
            assert.matches("a%.lua:10: field has no description", r.err)
            assert.matches("a%.lua:10: field has no source", r.err)
            assert.matches("a%.lua:11: an object needs 'fields'", r.err)
            assert.matches("b%.lua:1: unexpected symbol near <eof>", r.err)
            assert.matches("c%.lua: ok", r.out)
        end)

        it("writes nothing to the data directory", function()
            local dir = h.tmpdir()
            h.run({ "check", "--data-dir", dir .. "/data" })
            assert.is_nil(io.open(dir .. "/data"))
        end)
    end)

    describe("docs", function()
        it("renders the field table, schedule, endpoint, opt-out and disclosure", function()
            local r = h.run({ "docs", "eventstoredb" })
            assert.are.equal(0, r.code)
            assert.matches("| Statistic Name | Type | Description |", r.out, 1, true)
            assert.matches("| `environment.totalDiskSpace` | int |", r.out, 1, true)
            assert.matches("| `gossip` | map of string |", r.out, 1, true)
            assert.matches("first report: 1h after start", r.out, 1, true)
            assert.matches("then every 24h", r.out, 1, true)
            assert.matches("`POST https://eventstore.com/telemetry`", r.out, 1, true)
            assert.matches("environment variable `EVENTSTORE_TELEMETRY_OPTOUT`: off with `true`",
                r.out, 1, true)
            assert.matches("You have opted out of sending telemetry", r.out, 1, true)
            assert.matches("still built and logged", r.out, 1, true)
        end)

        it("documents every field that show sends", function()
            for _, p in ipairs({ "coroot", "electric", "eventstoredb", "mongooseim", "synapse" }) do
                local doc = h.run({ "docs", p }).out
                local args = { "show", p, "--data-dir", h.tmpdir() }
                if p == "mongooseim" then
                    -- MongooseIM's report is its node's (spec/fixtures/mongooseim)
                    local api = h.endpoint("serve:spec/fixtures/mongooseim/api")
                    finally(api.stop)
                    table.move({ "--set", "mongooseim.config=spec/fixtures/mongooseim/node.toml",
                                 "--set", "mongooseim.graphql=" .. api.url .. "/graphql" }, 1, 4,
                               #args + 1, args)
                end
                local report = json.decode(h.run(args).out)
                for k in pairs(report) do
                    assert.matches("| `" .. k .. "` |", doc, 1, true)
                end
            end
        end)
    end)
end)
