-- The network is hostile: the real daemon against scripted endpoints and the real
-- collector on 127.0.0.1. URLs are judged by the host libcurl would connect to, redirects
-- keep the report, no Retry-After stops a product, a delivery that dies leaves the
-- schedule armed, and an endpoint's secrets never reach a log, the state or `status`.
-- #integration
local json = require("phonehome.json")
local h = require("support.helper")

local product_dir = h.product_dir

-- The daemon's log of a run of a while (see h.run_for).
local function run_for(seconds, args, bin)
    return h.slurp(h.run_for(seconds, args, bin).err)
end

local run, count = h.run_daemon, h.count

local function status(scripts, data)
    local r = h.run({ "status", "t", "--scripts", scripts, "--data-dir", data, "--json" })
    return json.decode(r.out), r
end

-- Asserts that none of the secrets is in text.
local function hides(secrets, text, where)
    for _, s in ipairs(secrets) do
        assert.is_nil(text:find(s, 1, true), s .. " shown in " .. where .. ":\n" .. text)
    end
end

describe("the network is hostile #integration", function()
    setup(h.lock_bundled)
    teardown(h.unlock_bundled)
    after_each(h.cleanup)

    describe("plain http", function()
        it("is judged by the host libcurl connects to, not by what precedes a colon", function()
            -- the endpoint is also the proxy: a request reaching it proves a connection
            local ep = h.endpoint("201")
            local scripts = product_dir("")
            for _, url in ipairs({ "http://127.0.0.1:" .. ep.port .. "@example.invalid/r",
                                   "http://localhost:1@example.invalid/r",
                                   "http://[::1]@example.invalid/r",
                                   "Http://localhost:1@example.invalid/r" }) do
                local r = run({ "--once", "--scripts", scripts, "--data-dir", h.tmpdir(),
                                "--set", "t.endpoint=" .. url }, { http_proxy = ep.url })
                assert.are.equal(1, r.code, url .. ": " .. r.err)
                assert.matches("plain http to example%.invalid refused", r.err)
                assert.is_nil(r.err:find("transfer failed", 1, true), r.err)
                hides({ "localhost:1@", "[::1]@", ":" .. ep.port .. "@" }, r.err, "the log")
            end
            ep.stop()
            assert.are.same({}, ep.requests())
        end)

        it("goes to a loopback host however the URL spells it", function()
            local ep = h.endpoint("201")
            local scripts = product_dir("")
            for _, url in ipairs({ "http://example.invalid:1@127.0.0.1:" .. ep.port .. "/a",
                                   "HTTP://0x7f.1:" .. ep.port .. "/b",
                                   "http://LocalHost:" .. ep.port .. "/c" }) do
                local r = run({ "--once", "--scripts", scripts, "--data-dir", h.tmpdir(),
                                "--set", "t.endpoint=" .. url })
                assert.are.equal(0, r.code, url .. ": " .. r.err)
            end
            ep.stop()
            local paths = {}
            for _, req in ipairs(ep.requests()) do paths[#paths + 1] = req.path end
            assert.are.same({ "/a", "/b", "/c" }, paths)
        end)

        it("refuses what is not an http(s) URL without naming its secrets", function()
            local scripts = product_dir("")
            for _, url in ipairs({ "ftp://alice:hunter2@127.0.0.1/x?auth=abc123",
                                   "http://alice:hunter2@ex ample/x?auth=abc123",
                                   "127.0.0.1/x?auth=abc123" }) do
                local data = h.tmpdir()
                local r = run({ "--once", "--scripts", scripts, "--data-dir", data,
                                "--set", "t.endpoint=" .. url })
                assert.are.equal(1, r.code, r.err)
                assert.matches("is not an http%(s%) URL", r.err)
                hides({ "alice", "hunter2", "abc123" }, r.err, "the log")
                hides({ "alice", "hunter2", "abc123" }, h.slurp(data .. "/t/state.json"),
                      "the state")
            end
        end)
    end)

    it("takes HTTPS and HTTP in any case", function()
        local dir = h.tmpdir()
        h.sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
            .. "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -days 2 "
            .. "-keyout " .. dir .. "/key.pem -out " .. dir .. "/cert.pem 2>/dev/null")
        local tls = h.spawn({ "collect", "--listen", "127.0.0.1:0", "--db", dir .. "/r.db",
                              "--tls-cert", dir .. "/cert.pem", "--tls-key", dir .. "/key.pem" })
        local port = h.wait_for(tls.err, "addr=127%.0%.0%.1:(%d+) .*scheme=https")
        local r = run({ "coroot", "--once", "--endpoint", "HTTPS://127.0.0.1:" .. port,
                        "--data-dir", dir, "--set", "coroot.ca_file=" .. dir .. "/cert.pem" })
        h.sh("kill " .. tls.pid)
        assert.are.equal(0, r.code, r.err)
        assert.matches('msg="report sent".*status=201 url=https://127%.0%.0%.1:', r.err)
        -- a script may declare its endpoint so too
        local scripts = product_dir("")
        h.write(scripts .. "/t.lua", h.slurp(scripts .. "/t.lua")
            :gsub('"http://127%.0%.0%.1:9/report"', '"HTTPS://stats.example.org/report"'))
        r = h.run({ "check", scripts .. "/t.lua" })
        assert.are.equal(0, r.code, r.err)
    end)

    it("keeps a report answered with a redirect, and delivers it later", function()
        local ep = h.endpoint("301>http://alice:hunter2@elsewhere.example/x?auth=abc123,"
            .. "302>/moved,307,201")
        local scripts, data = product_dir("delivery = { retries = 2, backoff = \"100ms\" },"),
            h.tmpdir()
        local function once()
            return run({ "--once", "--scripts", scripts, "--data-dir", data,
                         "--endpoint", ep.url })
        end
        local r = once()
        assert.are.equal(1, r.code)
        assert.matches('msg="endpoint redirected the report; not following" attempt=1 .*'
            .. 'location="http://REDACTED@elsewhere%.example/x%?auth=REDACTED" .*status=301',
            r.err)
        hides({ "alice", "hunter2", "abc123" }, r.err, "the log")
        assert.are.equal(1, status(scripts, data).spool)
        assert.are.equal("failed: status 301", status(scripts, data).last_result)
        r = once()
        assert.are.equal(1, r.code)
        assert.matches("location=http://127%.0%.0%.1:" .. ep.port .. "/moved", r.err)
        assert.are.equal(2, status(scripts, data).spool)
        r = once()
        assert.are.equal(1, r.code)
        assert.matches("status=307", r.err)
        assert.are.equal(3, status(scripts, data).spool)
        r = once()
        assert.are.equal(0, r.code, r.err)
        assert.are.equal(0, status(scripts, data).spool)
        ep.stop()
        local reqs = ep.requests()
        -- one request per answer: a redirect is not retried at once, nor followed
        assert.are.equal(7, #reqs)
        assert.are.same({ 301, 302, 307, 201, 201, 201, 201 },
            { reqs[1].status, reqs[2].status, reqs[3].status, reqs[4].status, reqs[5].status,
              reqs[6].status, reqs[7].status })
        assert.are.equal(reqs[1].key, reqs[4].key)
        assert.are.equal(reqs[1].body, reqs[4].body)
    end)

    it("waits at most an hour whatever Retry-After says, and keeps sending", function()
        -- time scale 3600: a report every second, an hour's wait is one second
        local ep = h.endpoint("503/date:99999999999,429/99999999999999999999,503/date:9999,"
            .. "429/4000,201")
        local scripts = product_dir("delivery = { retries = 3, backoff = \"100ms\" },")
        local err = run_for(6, { "--scripts", scripts, "--data-dir", h.tmpdir(),
                                 "--endpoint", ep.url, "--time-scale", "3600" })
        ep.stop()
        assert.is_nil(err:find("internal error", 1, true), err)
        local waits = 0
        for wait in err:gmatch("retry_in=([%d.]+)s") do
            waits = waits + 1
            assert.is_true(tonumber(wait) <= 1.0005, "waited " .. wait .. "\n" .. err)
        end
        assert.are.equal(3, waits, err)
        local sent = 0
        for _, req in ipairs(ep.requests()) do
            if req.status == 201 then sent = sent + 1 end
        end
        assert.is_true(sent >= 2, "delivered " .. sent .. "\n" .. err)
        assert.is_true(count(err, 'msg="next report"') >= 4, err)
    end)

    it("schedules the next report when a report's delivery dies", function()
        -- an install whose HTTP part cannot be loaded: every delivery raises
        local dir = h.tmpdir()
        h.sh("mkdir -p " .. dir .. "/bin/lib/phonehome && cp " .. h.quote(h.bin) .. " "
            .. dir .. "/bin/phonehome && : >" .. dir .. "/bin/lib/phonehome/http_client.so"
            .. " && ln -s " .. h.quote(h.sh("pwd") .. "/lib") .. " " .. dir .. "/lib")
        local scripts = product_dir("")
        local err = run_for(3.5, { "--scripts", scripts, "--data-dir", h.tmpdir(),
                                   "--endpoint", "http://127.0.0.1:9", "--time-scale", "3600" },
                            dir .. "/bin/phonehome")
        assert.matches("http_client%.so", err)
        assert.is_true(count(err, "level=error product=t ") >= 2, err)
        assert.is_true(count(err, 'msg="next report"') >= 3, err)
    end)

    it("never shows an endpoint's user, password or query in logs, state or status", function()
        local ep = h.endpoint("500")
        local secrets = { "alice", "hunter2", "abc123", "s3cr3t" }
        for _, url in ipairs({
            "http://alice:hunter2@192.0.2.1/r?auth=abc123&sig=s3cr3t",
            "http://alice:hunter2@127.0.0.1:" .. ep.port .. "/r?auth=abc123&sig=s3cr3t",
        }) do
            local scripts, data = product_dir(""), h.tmpdir()
            local r = run({ "--once", "--scripts", scripts, "--data-dir", data,
                            "--set", "t.endpoint=" .. url })
            assert.are.equal(1, r.code, r.err)
            hides(secrets, r.err, "the log")
            hides(secrets, h.slurp(data .. "/t/state.json"), "the state file")
            local st, sr = status(scripts, data)
            assert.matches("^failed: ", st.last_result)
            hides(secrets, sr.out, "status --json")
            sr = h.run({ "status", "t", "--scripts", scripts, "--data-dir", data })
            hides(secrets, sr.out, "status")
        end
        ep.stop()
        assert.are.equal(1, #ep.requests())
    end)
end)
