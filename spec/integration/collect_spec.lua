-- phonehome collect: the real binary on 127.0.0.1, driven by curl and raw sockets.
-- #integration
local json = require("phonehome.json")
local h = require("support.helper")

-- A collector that stores GA4 hits of G-TEST1 as MongooseIM's.
local function start(extra)
    local args = { "--ga4", "G-TEST1=mongooseim" }
    for _, a in ipairs(extra or {}) do args[#args + 1] = a end
    return h.collector(args)
end

local function stop(c)
    h.sh("kill -TERM " .. c.pid)
    return h.exit_code(c)
end

local function report(name)
    local r = h.run({ "show", name, "--data-dir", h.tmpdir() })
    assert(r.code == 0, r.err)
    return r.out
end

local function post(c, path, body, headers, method)
    local hd = { ["Content-Type"] = "application/json" }
    for k, v in pairs(headers or {}) do hd[k] = v end
    return h.http(c.url .. path, { method = method or "POST", body = body, headers = hd })
end

local function stored(c, product)
    local args = { "reports", "--db", c.db }
    if product then args[#args + 1] = "--product"; args[#args + 1] = product end
    local r = h.run(args)
    assert(r.code == 0, r.err)
    local rows = {}
    for line in r.out:gmatch("[^\n]+") do rows[#rows + 1] = assert(json.decode(line)) end
    return rows
end

local function ga4_body(n)
    local events = {}
    for i = 1, n do events[i] = { name = "host_count", params = { host_types = i } } end
    return json.encode({ client_id = "5f0e2d3a-4b6c-4d8e-9f10-112233445566", events = events })
end

describe("phonehome collect #integration", function()
    setup(h.lock_bundled)
    teardown(h.unlock_bundled)
    local c
    before_each(function() c = start() end)
    after_each(function()
        if c then h.sh("kill -9 " .. c.pid .. " 2>/dev/null") end
        h.cleanup()
    end)

    it("stores a report once per Idempotency-Key, with its instance id", function()
        local body = report("coroot")
        local status, answer = post(c, "/v1/report/coroot", body, { ["Idempotency-Key"] = "k-1" })
        assert.are.equal(201, status)
        assert.is_true(json.decode(answer).stored)
        status, answer = post(c, "/v1/report/coroot", body, { ["Idempotency-Key"] = "k-1" }, "PUT")
        assert.are.equal(200, status)
        assert.is_true(json.decode(answer).duplicate)
        assert.are.equal(201, (post(c, "/v1/report/coroot", body, nil, "PUT")))
        local rows = stored(c, "coroot")
        assert.are.equal(2, #rows)
        assert.are.equal("k-1", rows[1].idempotency_key)
        assert.are.equal(json.decode(body).instance.uuid, rows[1].instance)
        assert.are.same(json.decode(body), rows[1].report)
        assert.is_nil(rows[1].client)
        assert.is_nil(rows[1].user_agent)
    end)

    it("takes Synapse's own route, with PUT only", function()
        local body = report("synapse")
        assert.are.equal(201, (post(c, "/report-usage-stats/push", body, nil, "PUT")))
        assert.are.equal(405, (post(c, "/report-usage-stats/push", body, nil, "POST")))
        assert.are.equal(1, #stored(c, "synapse"))
    end)

    it("takes GA4 Measurement Protocol hits of 25 events and refuses 26", function()
        local path = "/mp/collect?measurement_id=G-TEST1&api_secret=s3cr3t-value"
        local status = post(c, path, ga4_body(25))
        assert.are.equal(201, status)
        local answer
        status, answer = post(c, path, ga4_body(26))
        assert.are.equal(422, status)
        assert.matches("26 events, GA4 takes at most 25 a request", answer)
        assert.are.equal(404,
            (post(c, "/mp/collect?measurement_id=G-OTHER&api_secret=x", ga4_body(1))))
        local rows = stored(c, "mongooseim")
        assert.are.equal(1, #rows)
        assert.are.equal("5f0e2d3a-4b6c-4d8e-9f10-112233445566", rows[1].instance)
        assert.is_nil(h.slurp(c.err):find("s3cr3t", 1, true))
    end)

    it("answers every wrong request with its own status, and stores none of them", function()
        local body = report("eventstoredb")
        local status, answer = post(c, "/v1/report/eventstoredb", "{not json")
        assert.are.equal(400, status)
        assert.matches("body is not JSON: ", answer)
        assert.are.equal(400, (post(c, "/v1/report/eventstoredb", "[1,2]")))
        assert.are.equal(404, (post(c, "/v1/report/nosuch", body)))
        assert.are.equal(404, (post(c, "/v2/elsewhere", body)))
        assert.are.equal(405, (h.http(c.url .. "/v1/report/eventstoredb")))
        assert.are.equal(405, (post(c, "/v1/summary", "{}")))
        assert.are.equal(415, (post(c, "/v1/report/eventstoredb", body,
            { ["Content-Type"] = "text/plain" })))
        assert.are.equal(400, (post(c, "/v1/report/eventstoredb", body,
            { ["Idempotency-Key"] = ("x"):rep(300) })))
        local bad = json.decode(body)
        bad.environment.totalMemory = "lots"
        bad.email = "someone@example.org"
        bad.cluster = nil
        status, answer = post(c, "/v1/report/eventstoredb", json.encode(bad))
        assert.are.equal(422, status)
        local reasons = json.decode(answer).reasons
        table.sort(reasons)
        assert.are.same({
            "field 'cluster': missing required value (object)",
            "field 'email': key was not declared",
            "field 'environment.totalMemory': expected int, got string \"lots\"",
        }, reasons)
        assert.are.same({}, stored(c))
    end)

    it("refuses a body over --max-body with 413", function()
        h.sh("kill -9 " .. c.pid)
        c = start({ "--max-body", "1000" })
        local status, answer = post(c, "/v1/report/coroot", report("coroot") .. (" "):rep(1000))
        assert.are.equal(413, status)
        assert.matches("larger than 1000 bytes", answer)
        assert.are.equal(200, (h.http(c.url .. "/healthz")))
    end)

    it("counts reports and instances per product in /v1/summary and /metrics", function()
        local a, b = report("coroot"), report("coroot")
        post(c, "/v1/report/coroot", a)
        post(c, "/v1/report/coroot", a)
        post(c, "/v1/report/coroot", b)
        post(c, "/report-usage-stats/push", report("synapse"), nil, "PUT")
        local status, answer = h.http(c.url .. "/v1/summary")
        assert.are.equal(200, status)
        local s = json.decode(answer).products
        assert.are.equal(3, s.coroot.reports)
        assert.are.equal(2, s.coroot.instances)
        assert.are.equal(1, s.synapse.reports)
        assert.are.equal(0, s.synapse.instances)
        assert.matches("^%d%d%d%d%-%d%d%-%d%dT", s.coroot.first_received)
        assert.is_true(s.coroot.last_received >= s.coroot.first_received)
        local metrics
        status, metrics = h.http(c.url .. "/metrics")
        assert.are.equal(200, status)
        assert.matches('\nphonehome_reports_total{product="coroot"} 3\n', metrics, 1, true)
        assert.matches('\nphonehome_instances{product="coroot"} 2\n', metrics, 1, true)
        assert.matches("# TYPE phonehome_reports_total counter", metrics, 1, true)
        assert.are.equal(200, (h.http(c.url .. "/healthz")))
    end)

    it("prints stored reports as JSON lines, by product and last N", function()
        for _ = 1, 3 do post(c, "/v1/report/coroot", report("coroot")) end
        post(c, "/v1/report/electric", report("electric"))
        assert.are.equal(4, #stored(c))
        local r = h.run({ "reports", "--db", c.db, "--product", "coroot", "--last", "2" })
        local lines = {}
        for line in r.out:gmatch("[^\n]+") do lines[#lines + 1] = json.decode(line) end
        assert.are.equal(2, #lines)
        assert.are.equal(2, lines[1].id)
        assert.are.equal(3, lines[2].id)
        assert.are.equal(1, h.run({ "reports", "--db", c.dir .. "/none.db" }).code)
    end)

    it("keeps the client's address and user agent only with --store-client", function()
        h.sh("kill -9 " .. c.pid)
        c = start({ "--store-client" })
        post(c, "/v1/report/coroot", report("coroot"), { ["User-Agent"] = "probe/1.0" })
        local row = stored(c)[1]
        assert.are.equal("127.0.0.1", row.client)
        assert.are.equal("probe/1.0", row.user_agent)
    end)

    it("logs one line per request and drains on SIGTERM, exiting 0", function()
        post(c, "/v1/report/coroot", report("coroot"))
        h.http(c.url .. "/healthz")
        assert.are.equal(0, stop(c))
        local log = h.slurp(c.err)
        assert.matches("level=info product=coroot msg=request bytes=%d+ method=POST "
            .. "path=/v1/report/coroot status=201", log)
        assert.matches("msg=request bytes=0 method=GET path=/healthz status=200", log)
        assert.matches("msg=stopping .*signal=SIGTERM", log)
        assert.matches("msg=stopped", log)
        c = nil
    end)

    it("finishes a request in flight when SIGTERM comes", function()
        -- a sender that has sent its headers but not yet all of its body
        local body = report("coroot")
        local dir = h.tmpdir()
        h.write(dir .. "/head", "POST /v1/report/coroot HTTP/1.1\r\nHost: x\r\n"
            .. "Content-Type: application/json\r\n"
            .. "Content-Length: " .. #body .. "\r\nConnection: close\r\n\r\n" .. body:sub(1, 10))
        h.write(dir .. "/tail", body:sub(11))
        h.sh("bash -c 'exec 3<>/dev/tcp/127.0.0.1/" .. c.port .. "; cat " .. dir
            .. "/head >&3; sleep 0.5; "
            .. "cat " .. dir .. "/tail >&3; cat <&3 >" .. dir .. "/answer' >/dev/null 2>&1 &")
        h.sh("sleep 0.2")
        h.sh("kill -TERM " .. c.pid)
        assert.are.equal(0, h.exit_code(c))
        assert.matches("^HTTP/1.1 201", h.slurp(dir .. "/answer"))
        c = nil
    end)
end)

describe("phonehome collect, on bad ground #integration", function()
    setup(h.lock_bundled)
    teardown(h.unlock_bundled)
    after_each(h.cleanup)

    it("refuses a database file that is not SQLite, and one it cannot create", function()
        local dir = h.tmpdir()
        h.write(dir .. "/junk.db", ("not a database at all "):rep(100))
        local r = h.run({ "collect", "--listen", "127.0.0.1:0", "--db", dir .. "/junk.db" })
        assert.are.equal(1, r.code)
        assert.matches("cannot open the database: .*junk%.db: file is not a database", r.err)
        r = h.run({ "collect", "--listen", "127.0.0.1:0", "--db", "/proc/phonehome/reports.db" })
        assert.are.equal(1, r.code)
        assert.matches("cannot open the database: /proc/phonehome/reports%.db", r.err)
    end)

    it("refuses a bad listen address and a port in use", function()
        local r = h.run({ "collect", "--listen", "nowhere", "--db", h.tmpdir() .. "/r.db" })
        assert.are.equal(1, r.code)
        assert.matches("listen address 'nowhere'", r.err)
        local c = start()
        r = h.run({ "collect", "--listen", "127.0.0.1:" .. c.port, "--db", h.tmpdir() .. "/r.db" })
        assert.are.equal(1, r.code)
        assert.matches("cannot listen on 127%.0%.0%.1:" .. c.port, r.err)
        h.sh("kill -9 " .. c.pid)
    end)

    it("closes garbage connections and keeps serving others", function()
        local c = start()
        local dir = h.tmpdir()
        local tcp = "exec 3<>/dev/tcp/127.0.0.1/" .. c.port .. "; "
        -- a half request that never ends, a slow sender, an oversized header, noise
        h.sh("bash -c '" .. tcp .. "printf \"GET /heal\" >&3; sleep 3' >/dev/null 2>&1 &")
        h.sh("bash -c '" .. tcp .. "for i in 1 2 3 4 5 6; do printf P >&3; sleep 0.5; done' "
            .. ">/dev/null 2>&1 &")
        h.write(dir .. "/big", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " .. ("a"):rep(64 * 1024)
            .. "\r\n\r\n")
        h.sh("bash -c '" .. tcp .. "cat " .. dir .. "/big >&3; cat <&3 >" .. dir
            .. "/big-answer' >/dev/null 2>&1")
        h.sh("bash -c '" .. tcp .. "head -c 5000 /dev/urandom >&3; cat <&3 >/dev/null' "
            .. ">/dev/null 2>&1")
        assert.is_nil(h.slurp(dir .. "/big-answer"):match("^HTTP/1%.1 200"))
        local t0 = os.time()
        for _ = 1, 5 do assert.are.equal(200, (h.http(c.url .. "/healthz", { timeout = 2 }))) end
        assert.is_true(os.time() - t0 <= 2)
        assert.are.equal(201, (post(c, "/v1/report/coroot", report("coroot"))))
        h.sh("kill -9 " .. c.pid)
    end)

    it("keeps every acknowledged report, once, when killed mid-burst", function()
        local c = start()
        local dir = h.tmpdir()
        h.write(dir .. "/body", report("coroot"))
        local config = {}
        for i = 1, 3000 do
            config[#config + 1] = string.format('url = "%s/v1/report/coroot?k=%d"\n'
                .. 'header = "Idempotency-Key: k%d"\n'
                .. 'header = "Content-Type: application/json"\ndata-binary = "@%s/body"\n'
                .. 'write-out = "%%{http_code} %d\\n"\noutput = "/dev/null"\nnext',
                c.url, i, i, dir, i)
        end
        h.write(dir .. "/curl.conf", table.concat(config, "\n") .. "\n")
        h.sh("curl -s --parallel --parallel-max 16 -K " .. dir .. "/curl.conf >" .. dir
            .. "/codes 2>/dev/null & sleep 0.4; kill -9 " .. c.pid .. "; wait")
        local acked = {}
        for code, i in h.slurp(dir .. "/codes"):gmatch("(%d+) (%d+)") do
            if code == "201" then acked[#acked + 1] = "k" .. i end
        end
        assert.is_true(#acked > 0, "no report was acknowledged before the kill")
        assert.is_true(#acked < 3000, "the burst ended before the kill")
        local again = start({})
        h.sh("kill -9 " .. again.pid)
        local keys = {}
        for _, row in ipairs(stored({ db = c.db })) do
            assert.is_nil(keys[row.idempotency_key],
                "stored twice: " .. tostring(row.idempotency_key))
            keys[row.idempotency_key] = true
        end
        for _, k in ipairs(acked) do
            assert.is_true(keys[k], k .. " was acknowledged but is not stored")
        end
    end)
end)
