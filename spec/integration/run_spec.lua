-- phonehome run: the real daemon against the real collector and a scripted endpoint on
-- 127.0.0.1: schedules, --once, --dry-run, opt-out, disclosure, retries, spool, signals.
-- #integration
local core = require("phonehome.core")
local json = require("phonehome.json")
local h = require("support.helper")

local collector, product_dir, run_for = h.collector, h.product_dir, h.run_for

local PRODUCTS = { "coroot", "electric", "eventstoredb", "mongooseim", "synapse" }

local run, count = h.run_daemon, h.count

-- MongooseIM reads its node: the config and admin GraphQL API of spec/fixtures/mongooseim.
local function mongooseim_node(args)
    local api = h.endpoint("serve:spec/fixtures/mongooseim/api")
    finally(api.stop)
    for _, a in ipairs({ "--set", "mongooseim.config=spec/fixtures/mongooseim/node.toml",
                         "--set", "mongooseim.graphql=" .. api.url .. "/graphql" }) do
        args[#args + 1] = a
    end
    return args
end

describe("phonehome run #integration", function()
    setup(h.lock_bundled)
    teardown(h.unlock_bundled)
    local c
    after_each(function()
        if c then c.stop() end
        c = nil
        h.cleanup()
    end)

    describe("--once", function()
        it("sends every product's report now and exits 0 when all were delivered", function()
            c = collector()
            local data = h.tmpdir()
            local r = run(mongooseim_node({ "--once", "--endpoint", c.url, "--data-dir", data,
                                            "--set", "synapse.report_stats=true" }))
            assert.are.equal(0, r.code, r.err)
            local seen = {}
            for _, row in ipairs(c.rows()) do seen[row.product] = (seen[row.product] or 0) + 1 end
            assert.are.same({ coroot = 1, electric = 1, eventstoredb = 1, mongooseim = 1,
                              synapse = 1 }, seen)
            assert.matches('level=info product=coroot msg="report sent" attempt=1 bytes=%d+ '
                .. 'status=201 url=http://127', r.err)
            -- each product keeps its last report; MongooseIM under its own file name
            assert.is_table(json.decode(h.slurp(data .. "/mongooseim/system_metrics_report.json")))
            assert.is_table(json.decode(h.slurp(data .. "/coroot/last.json")))
        end)

        it("keeps the instance id across runs", function()
            c = collector()
            local data = h.tmpdir()
            run({ "coroot", "--once", "--endpoint", c.url, "--data-dir", data })
            run({ "coroot", "--once", "--endpoint", c.url, "--data-dir", data })
            local rows = c.rows()
            assert.are.equal(2, #rows)
            assert.are.equal(rows[1].instance, rows[2].instance)
            assert.are.equal(h.slurp(data .. "/coroot/instance.uuid"), rows[1].instance)
        end)

        it("exits 1 and keeps the report when the endpoint is down; "
            .. "delivers all, in order, when it is back",
            function()
            c = collector()
            local port = c.port
            c.stop()
            local data, scripts = h.tmpdir(),
                product_dir("delivery = { retries = 1, backoff = \"100ms\" },")
            local r = run({ "--once", "--scripts", scripts, "--data-dir", data,
                            "--endpoint", "http://127.0.0.1:" .. port })
            assert.are.equal(1, r.code)
            assert.matches("msg=\"transfer failed\".*error=\"Couldn't connect to server\"", r.err)
            local first_key = h.sh("ls " .. data .. "/t/spool"):match("^%d+%-(.+)%.json$")
            assert.is_string(first_key)
            local st = h.run({ "status", "t", "--scripts", scripts, "--data-dir", data, "--json" })
            assert.are.equal(1, json.decode(st.out).spool)
            -- the endpoint comes back on the same port
            local dir = h.tmpdir()
            c = h.spawn({ "collect", "--listen", "127.0.0.1:" .. port, "--db", dir .. "/r.db",
                          "--scripts", scripts })
            h.wait_for(c.err, "msg=listening")
            c.db, c.url = dir .. "/r.db", "http://127.0.0.1:" .. port
            c.rows = function()
                local rows = {}
                for line in h.run({ "reports", "--db", c.db }).out:gmatch("[^\n]+") do
                    rows[#rows + 1] = json.decode(line)
                end
                return rows
            end
            c.stop = function() h.sh("kill -9 " .. c.pid) end
            r = run({ "--once", "--scripts", scripts, "--data-dir", data, "--endpoint", c.url })
            assert.are.equal(0, r.code, r.err)
            local rows = c.rows()
            assert.are.equal(2, #rows)
            assert.are.equal(first_key, rows[1].idempotency_key)
            assert.are_not.equal(first_key, rows[2].idempotency_key)
            assert.are.equal(0, json.decode(h.run({ "status", "t", "--scripts", scripts,
                "--data-dir", data, "--json" }).out).spool)
        end)
    end)

    it("--dry-run builds and logs reports and sends nothing", function()
        c = collector()
        local r = run(mongooseim_node({ "--once", "--dry-run", "--endpoint", c.url, "--data-dir",
                                        h.tmpdir() }))
        assert.are.equal(0, r.code)
        assert.are.equal(4, count(r.err, 'msg="report built, not sent"'))
        assert.matches('reason=%-%-dry%-run report="{', r.err)
        assert.are.same({}, c.rows())
    end)

    describe("opt-out", function()
        local cases = {
            { "eventstoredb", {}, { EVENTSTORE_TELEMETRY_OPTOUT = "true" } },
            { "coroot", { "--", "--disable-usage-statistics" } },
            { "coroot", {}, { DISABLE_USAGE_STATISTICS = "true" } },
            { "coroot", { "--set", "coroot.disable_usage_statistics=true" } },
            { "synapse", {} },
            { "synapse", { "--set", "synapse.report_stats=false" } },
            { "electric", {}, { ELECTRIC_TELEMETRY = "disabled" } },
            { "electric", {}, { ELECTRIC_TELEMETRY = "off" } },
            { "mongooseim", { "--set", "mongooseim.report=false" } },
        }
        for _, case in ipairs(cases) do
            local name, args, env = case[1], case[2], case[3] or {}
            local how = table.concat(args, " ")
            for k, v in pairs(env) do how = how .. " " .. k .. "=" .. v end
            it(name .. " sends nothing when turned off by" .. how, function()
                c = collector()
                -- the product's own flags come last, after --
                local full = { name, "--once", "--endpoint", c.url, "--data-dir", h.tmpdir(),
                               table.unpack(args) }
                local r = run(full, env)
                assert.are.equal(0, r.code, r.err)
                assert.matches("sending=false", r.err)
                assert.are.same({}, c.rows())
            end)
        end

        it("DO_NOT_TRACK=1 stops every product", function()
            c = collector()
            local r = run({ "--once", "--endpoint", c.url, "--data-dir", h.tmpdir(),
                            "--set", "synapse.report_stats=true" },
                { DO_NOT_TRACK = "1" })
            assert.are.equal(0, r.code)
            assert.are.equal(5, count(r.err, 'reason="DO_NOT_TRACK=1" sending=false'))
            assert.are.same({}, c.rows())
        end)

        it("EventStoreDB still builds and logs its report when opted out", function()
            c = collector()
            local r = run({ "eventstoredb", "--once", "--endpoint", c.url,
                            "--data-dir", h.tmpdir() },
                { EVENTSTORE_TELEMETRY_OPTOUT = "true" })
            assert.matches('msg="report built, not sent" reason="EVENTSTORE_TELEMETRY_OPTOUT=true" '
                .. 'report="{', r.err)
            assert.are.same({}, c.rows())
        end)

        it("refuses to start a product whose switch holds a value it does not accept", function()
            c = collector()
            local r = run({ "electric", "coroot", "--once", "--endpoint", c.url,
                            "--data-dir", h.tmpdir() },
                { ELECTRIC_TELEMETRY = "maybe" })
            assert.matches('level=error product=electric msg="product not started" '
                .. 'error=.*ELECTRIC_TELEMETRY', r.err)
            assert.are.equal(1, #c.rows())
        end)

        it("logs Synapse's report before sending it, and lets MongooseIM start quietly", function()
            c = collector()
            local r = run({ "synapse", "--once", "--endpoint", c.url, "--data-dir", h.tmpdir(),
                            "--set", "synapse.report_stats=true" })
            assert.matches('product=synapse msg="sending report" report="{\\"cache_factor\\"',
                r.err)
            r = run({ "mongooseim", "--once", "--dry-run", "--data-dir", h.tmpdir() })
            assert.matches("MongooseIM collects anonymous system metrics", r.err, 1, true)
            r = run({ "mongooseim", "--once", "--dry-run", "--data-dir", h.tmpdir(),
                      "--set", "mongooseim.report=true" })
            assert.is_nil(r.err:find("MongooseIM collects", 1, true))
        end)

        it("prints each product's disclosure in its on or off wording", function()
            local r = run({ "eventstoredb", "--once", "--dry-run", "--data-dir", h.tmpdir() })
            assert.matches("You can opt out of sending telemetry", r.err, 1, true)
            r = run({ "eventstoredb", "--once", "--dry-run", "--data-dir", h.tmpdir() },
                { EVENTSTORE_TELEMETRY_OPTOUT = "true" })
            assert.matches("You have opted out of sending telemetry", r.err, 1, true)
            r = run({ "synapse", "--once", "--dry-run", "--data-dir", h.tmpdir() })
            assert.matches("does not report usage statistics", r.err, 1, true)
        end)
    end)

    describe("delivery", function()
        it("waits as Retry-After says on 429, with the same Idempotency-Key", function()
            local ep = h.endpoint("429/1,201")
            local scripts = product_dir("delivery = { retries = 2, backoff = \"100ms\" },")
            local r = run({ "--once", "--scripts", scripts, "--data-dir", h.tmpdir(),
                            "--endpoint", ep.url })
            ep.stop()
            assert.are.equal(0, r.code, r.err)
            local reqs = ep.requests()
            assert.are.equal(2, #reqs)
            assert.are.equal(reqs[1].key, reqs[2].key)
            assert.is_true(reqs[2].time - reqs[1].time >= 0.95,
                "waited " .. (reqs[2].time - reqs[1].time))
            assert.matches('status=429', r.err)
        end)

        it("does not retry a 400, and logs the start of the answer", function()
            local ep = h.endpoint("400")
            local data, scripts = h.tmpdir(),
                product_dir("delivery = { retries = 3, backoff = \"100ms\" },")
            local r = run({ "--once", "--scripts", scripts, "--data-dir", data,
                            "--endpoint", ep.url })
            ep.stop()
            assert.are.equal(1, r.code)
            assert.are.equal(1, #ep.requests())
            assert.matches('msg="endpoint refused the report".*response="{\\"answer\\":400}" '
                .. 'status=400', r.err)
            assert.are.equal(0, json.decode(h.run({ "status", "t", "--scripts", scripts,
                "--data-dir", data, "--json" }).out).spool)
        end)

        it("gives up on a hanging endpoint after the timeout", function()
            local ep = h.endpoint("201")
            h.sh("kill -STOP " .. ep.pid)
            local scripts = product_dir("delivery = { retries = 0, timeout = \"1s\" },")
            local t0 = os.time()
            local r = run({ "--once", "--scripts", scripts, "--data-dir", h.tmpdir(),
                            "--endpoint", ep.url })
            ep.stop()
            assert.are.equal(1, r.code)
            assert.is_true(os.time() - t0 <= 4)
            assert.matches('msg="transfer failed".*error="Timeout was reached"', r.err)
        end)

        it("verifies TLS peers: with the operator's CA file, and never without", function()
            local dir = h.tmpdir()
            h.sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                .. "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -days 2 "
                .. "-keyout " .. dir .. "/key.pem -out " .. dir .. "/cert.pem 2>/dev/null")
            local tls = h.spawn({ "collect", "--listen", "127.0.0.1:0", "--db", dir .. "/r.db",
                                  "--tls-cert", dir .. "/cert.pem",
                                  "--tls-key", dir .. "/key.pem" })
            local port = h.wait_for(tls.err, "addr=127%.0%.0%.1:(%d+) .*scheme=https")
            local url = "https://127.0.0.1:" .. port
            local r = run({ "coroot", "--once", "--endpoint", url, "--data-dir", dir })
            assert.are.equal(1, r.code)
            assert.matches('msg="transfer failed".*error="SSL peer certificate', r.err)
            r = run({ "coroot", "--once", "--endpoint", url, "--data-dir", dir,
                      "--set", "coroot.ca_file=" .. dir .. "/cert.pem" })
            assert.are.equal(0, r.code, r.err)
            assert.matches('msg="report sent".*status=201 url=https://', r.err)
            h.sh("kill " .. tls.pid)
        end)

        it("goes through the proxy the environment names", function()
            local proxy = h.endpoint("201")
            local scripts = product_dir("")
            local r = run({ "--once", "--scripts", scripts, "--data-dir", h.tmpdir(),
                            "--set", "t.endpoint=http://stats.example.invalid/report",
                            "--set", "t.allow_http=true" },
                          { http_proxy = proxy.url })
            proxy.stop()
            assert.are.equal(0, r.code, r.err)
            local reqs = proxy.requests()
            assert.are.equal(1, #reqs)
            assert.are.equal("http://stats.example.invalid/report", reqs[1].path)
        end)

        it("refuses plain http to another host unless allowed", function()
            local scripts = product_dir("")
            local r = run({ "--once", "--scripts", scripts, "--data-dir", h.tmpdir(),
                            "--set", "t.endpoint=http://192.0.2.1/report" })
            assert.are.equal(1, r.code)
            assert.matches("plain http to 192%.0%.2%.1 refused; "
                .. "use https, or set t%.allow_http=true", r.err)
        end)

        it("bounds the spool, dropping the oldest", function()
            local data = h.tmpdir()
            local scripts = product_dir([[schedule = { first = "100ms", interval = "100ms" },
                delivery = { retries = 0, spool_reports = 3 },]])
            local p = run_for(1.2, { "--scripts", scripts, "--data-dir", data,
                                     "--endpoint", "http://127.0.0.1:9" })
            local err = h.slurp(p.err)
            assert.matches('msg="spool full: dropped the oldest report"', err)
            assert.are.equal(3, json.decode(h.run({ "status", "t", "--scripts", scripts,
                "--data-dir", data, "--json" }).out).spool)
        end)
    end)

    describe("schedules", function()
        it("sends Coroot at start and then every hour (time scale 3600)", function()
            c = collector()
            run_for(2.5, { "coroot", "--endpoint", c.url, "--data-dir", h.tmpdir(),
                           "--time-scale", "3600" })
            assert.are.equal(3, #c.rows())
        end)

        it("anchors Synapse to process start: +300 s, then +3 h", function()
            local ep = h.endpoint("200")
            local t0 = tonumber(h.sh("date +%s.%N"))
            run_for(3.6, { "synapse", "--endpoint", ep.url, "--data-dir", h.tmpdir(),
                           "--time-scale", "3600", "--set", "synapse.report_stats=true" })
            ep.stop()
            local reqs = ep.requests()
            assert.are.equal(2, #reqs)
            assert.is_true(reqs[1].time - t0 < 0.6, "first after " .. (reqs[1].time - t0))
            assert.is_true(math.abs(reqs[2].time - t0 - 3) < 0.3,
                "second after " .. (reqs[2].time - t0))
            assert.are.equal("/v1/report/synapse", reqs[1].path)
        end)

        it("measures Synapse's cpu_average over the window since the previous report", function()
            -- a server that is idle until the first report has been received, then busy for
            -- 0.3 s of CPU, then idle again; reports come at about 0.08 s, 3.08 s and 6.08 s.
            -- Every figure is checked against the target's own CPU time and the endpoint's
            -- clock, so that a loaded or slow machine changes both alike.
            local t0 = core.time()
            local ep = h.endpoint("200")
            local target = h.sh("lua5.4 -e 'while not io.open(\"" .. ep.dir .. "/body-1\") do "
                .. "os.execute(\"sleep 0.01\") end local t = os.clock() "
                .. "while os.clock() - t < 0.3 do end os.execute(\"sleep 8\")' "
                .. ">/dev/null 2>&1 & echo $!")
            run_for(6.5, { "synapse", "--endpoint", ep.url, "--data-dir", h.tmpdir(),
                           "--time-scale", "3600",
                           "--pid", target, "--set", "synapse.report_stats=true" })
            local stat = h.slurp("/proc/" .. target .. "/stat"):match("%) (.*)$")
            local fields = {}
            for x in stat:gmatch("%S+") do fields[#fields + 1] = x end
            -- utime and stime, fields 14 and 15 of stat (12 and 13 after the name)
            local used = (tonumber(fields[12]) + tonumber(fields[13]))
                / tonumber(h.sh("getconf CLK_TCK"))
            h.sh("kill " .. target)
            ep.stop()
            local reqs = ep.requests()
            assert.are.equal(3, #reqs)
            local cpu = {}
            for i, r in ipairs(reqs) do cpu[i] = json.decode(r.body).cpu_average end
            assert.are.equal("integer", math.type(cpu[1]))
            -- the second window holds the busy time; before it the target only polled
            local wall = reqs[2].time - reqs[1].time
            local low = math.floor((used - 0.1) / wall * 100) - 2
            local high = math.ceil(used / wall * 100) + 2
            assert.is_true(cpu[2] >= math.max(low, 1) and cpu[2] <= high,
                string.format("second window %d, expected %d..%d", cpu[2], low, high))
            -- idle since the previous report: 0, where the average since start is not
            assert.is_true(used / (reqs[3].time - t0) * 100 >= 1)
            assert.are.equal(0, cpu[3])
        end)

        it("counts MongooseIM's milliseconds from the previous report", function()
            local ep = h.endpoint("200")
            -- the node's GraphQL API counts 12 messages sent
            run_for(2.2, mongooseim_node({ "mongooseim", "--endpoint", ep.url, "--data-dir",
                                           h.tmpdir(), "--set", "mongooseim.initial_report=500",
                                           "--set", "mongooseim.periodic_report=1000" }))
            ep.stop()
            local reqs = ep.requests()
            assert.are.equal(2, #reqs)
            assert.is_true(math.abs(reqs[2].time - reqs[1].time - 1) < 0.2)
            -- the stanza increment counts from the previous report
            local function sent(r)
                for _, e in ipairs(json.decode(r.body).events) do
                    if e.params.stanza_type == "xmppMessageSent" then return e.params end
                end
            end
            assert.are.same({ stanza_type = "xmppMessageSent", total = 12, increment = 12 },
                sent(reqs[1]))
            assert.are.same({ stanza_type = "xmppMessageSent", total = 12, increment = 0 },
                sent(reqs[2]))
        end)

        it("does not send early after a restart", function()
            local ep = h.endpoint("200")
            local data, scripts = h.tmpdir(),
                product_dir([[schedule = { first = "300ms", interval = "3s" },]])
            local p = h.spawn({ "run", "--scripts", scripts, "--data-dir", data,
                                "--endpoint", ep.url })
            h.sh("sleep 0.6")
            h.sh("kill -TERM " .. p.pid)
            h.exit_code(p)
            assert.are.equal(1, #ep.requests())
            p = h.spawn({ "run", "--scripts", scripts, "--data-dir", data, "--endpoint", ep.url })
            h.sh("sleep 1")
            assert.are.equal(1, #ep.requests())
            local st = json.decode(h.run({ "status", "t", "--scripts", scripts, "--data-dir", data,
                                           "--json" }).out)
            assert.is_true(st.next_due > st.last_sent)
            h.sh("kill -TERM " .. p.pid)
            assert.are.equal(0, h.exit_code(p))
            ep.stop()
        end)
    end)

    describe("signals and files", function()
        it("finishes or abandons a transfer on SIGTERM within the grace, keeping the report",
            function()
            local ep = h.endpoint("201")
            h.sh("kill -STOP " .. ep.pid)
            local data, scripts = h.tmpdir(),
                product_dir([[schedule = { first = "0s", interval = "1h" },
                delivery = { retries = 0, timeout = "60s" },]])
            local p = h.spawn({ "run", "--scripts", scripts, "--data-dir", data,
                                "--endpoint", ep.url })
            h.sh("sleep 0.5")
            local t0 = os.time()
            h.sh("kill -TERM " .. p.pid)
            assert.are.equal(0, h.exit_code(p))
            assert.is_true(os.time() - t0 <= 7)
            ep.stop()
            assert.are.equal(1, json.decode(h.run({ "status", "t", "--scripts", scripts,
                "--data-dir", data, "--json" }).out).spool)
        end)

        it("reloads scripts on SIGHUP, keeping the running version when the new one is broken",
            function()
            c = collector()
            local scripts = h.tmpdir()
            local function write(value)
                h.write(scripts .. "/t.lua", h.script("t",
                    '{ name = "n", type = "int", description = "d", '
                    .. "value = function() return " .. value .. " end },",
                    'schedule = { first = "200ms", interval = "400ms" },'))
            end
            write("1")
            c.stop()
            c = h.spawn({ "collect", "--listen", "127.0.0.1:0", "--db", scripts .. "/r.db",
                          "--scripts", scripts })
            local port = h.wait_for(c.err, "addr=127%.0%.0%.1:(%d+)")
            c.stop = function() h.sh("kill -9 " .. c.pid) end
            local p = h.spawn({ "run", "--scripts", scripts, "--data-dir", h.tmpdir(),
                                "--endpoint", "http://127.0.0.1:" .. port })
            h.wait_for(p.err, 'msg="report sent"')
            write("2")
            h.sh("kill -HUP " .. p.pid)
            h.wait_for(p.err, "msg=reloaded")
            h.sh("sleep 0.5")
            write("syntax error here")
            h.sh("kill -HUP " .. p.pid)
            h.wait_for(p.err, 'msg="reload failed; the running version stays"')
            h.sh("sleep 0.5")
            h.sh("kill -TERM " .. p.pid)
            assert.are.equal(0, h.exit_code(p))
            local values = {}
            for line in h.run({ "reports", "--db", scripts .. "/r.db" }).out:gmatch("[^\n]+") do
                values[#values + 1] = json.decode(line).report.n
            end
            assert.are.equal(1, values[1])
            assert.are.equal(2, values[#values])
            assert.matches("t%.lua:10: .*near 'error'", h.slurp(p.err))
        end)

        it("keeps a report in memory when the spool cannot be written, and delivers it", function()
            c = collector()
            local data = h.tmpdir()
            h.sh("mkdir -p " .. data .. "/coroot && touch " .. data .. "/coroot/spool")
            local r = run({ "coroot", "--once", "--endpoint", c.url, "--data-dir", data })
            assert.are.equal(0, r.code, r.err)
            assert.matches('level=warn product=coroot msg="cannot spool the report; '
                .. 'keeping it in memory"', r.err)
            assert.are.equal(1, #c.rows())
        end)

        it("logs each product's state on SIGUSR1", function()
            local p = h.spawn({ "run", "coroot", "synapse", "--dry-run", "--data-dir", h.tmpdir() })
            h.wait_for(p.err, "msg=started")
            h.sh("sleep 0.2; kill -USR1 " .. p.pid)
            h.wait_for(p.err, "product=synapse msg=state")
            h.sh("kill -INT " .. p.pid)
            assert.are.equal(0, h.exit_code(p))
            assert.matches('product=coroot msg=state .*sending=true', h.slurp(p.err))
        end)

        it("refuses a data directory it cannot write", function()
            local r = run({ "--once", "--data-dir", "/proc/phonehome" })
            assert.are.equal(1, r.code)
            assert.matches("data directory /proc/phonehome is not writable", r.err)
        end)
    end)

    describe("bad input", function()
        it("exits 2 on a time scale that is not a positive number", function()
            for _, v in ipairs({ "0", "-3", "fast" }) do
                local r = run({ "--time-scale", v, "--data-dir", h.tmpdir() })
                assert.are.equal(2, r.code)
                assert.matches("%-%-time%-scale: expected a positive number", r.err)
            end
        end)

        it("exits 1 when no product can start, naming each and why", function()
            local r = run({ "nosuch", "--once", "--data-dir", h.tmpdir() })
            assert.are.equal(1, r.code)
            assert.matches("level=error product=nosuch msg=\"product not started\" "
                .. "error=\"unknown product 'nosuch'\"", r.err)
            assert.matches("no product could be started", r.err)
        end)

        it("starts the products that can, when one cannot", function()
            c = collector()
            local r = run({ "coroot", "eventstoredb", "--once", "--endpoint", c.url,
                            "--data-dir", h.tmpdir(),
                            "--set", "eventstoredb.configuration.clusterSize=many" })
            assert.matches("product=eventstoredb msg=\"product not started\" error=.*expected int",
                r.err)
            assert.are.equal(0, r.code)
            assert.are.equal(1, #c.rows())
        end)
    end)

    describe("status", function()
        it("tells per product whether it sends, which switch decided, and what is due", function()
            local data = h.tmpdir()
            local r = h.run({ "status", "--data-dir", data, "--json" },
                { EVENTSTORE_TELEMETRY_OPTOUT = "true" })
            assert.are.equal(0, r.code)
            local by = {}
            for line in r.out:gmatch("[^\n]+") do
                local s = json.decode(line)
                by[s.product] = s
            end
            assert.are.same(PRODUCTS, (function()
                local t = {}
                for k in pairs(by) do t[#t + 1] = k end
                table.sort(t)
                return t
            end)())
            assert.is_false(by.eventstoredb.sending)
            assert.are.equal("EVENTSTORE_TELEMETRY_OPTOUT=true", by.eventstoredb.decided_by)
            assert.is_false(by.synapse.sending)
            assert.is_true(by.coroot.sending)
            r = h.run({ "status", "coroot", "--data-dir", data, "--",
                        "--disable-usage-statistics" })
            assert.matches("coroot: not sending %(flag %-%-disable%-usage%-statistics%)", r.out)
        end)
    end)
end)
