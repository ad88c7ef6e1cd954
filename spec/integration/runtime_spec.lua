-- The C host under real conditions: what `collect` writes on stderr, and errors in
-- callbacks, which fail that callback or that request and never the loop. #integration
local h = require("support.helper")

-- Runs Lua code in a child interpreter with the phonehome.core of the build under test
-- (and the sanitizer runtime `make sanitize` preloads), as h.spawn_shell does; DIR in the
-- code is the child's own directory, c.work.
local function child(code)
    local d = h.tmpdir()
    local file = h.write(d .. "/child.lua", string.format("package.cpath = %q\nlocal DIR = %q\n",
                                                          h.build .. "/lib/?.so", d) .. code)
    local c = h.spawn_shell("LD_PRELOAD=" .. h.quote(os.getenv("LD_PRELOAD") or "")
        .. " ASAN_OPTIONS=detect_leaks=0 lua5.4 " .. file)
    c.work = d
    return c
end

local function lines(text)
    local out = {}
    for line in text:gmatch("[^\n]+") do out[#out + 1] = line end
    return out
end

local has = h.has

describe("collect's stderr #integration", function()
    after_each(h.cleanup)

    it("holds only logfmt lines over plain HTTP, libmicrohttpd's own errors included", function()
        local dir = h.tmpdir()
        local c = h.spawn({ "collect", "--listen", "127.0.0.1:0", "--db", dir .. "/reports.db" })
        local port = h.wait_for(c.err, "msg=listening addr=127%.0%.0%.1:(%d+)")
        -- a header past the connection's memory limit: libmicrohttpd answers and logs it
        local status = h.http("http://127.0.0.1:" .. port .. "/v1/report/x",
                              { headers = { ["X-Big"] = string.rep("a", 40000) } })
        assert.are.equal(431, status)
        h.sh("kill -TERM " .. c.pid)
        assert.are.equal(0, h.exit_code(c, 30))
        local err = h.slurp(c.err)
        for _, line in ipairs(lines(err)) do
            assert.matches("^level=%a+ ", line)
        end
        assert.matches('level=warn msg="libmicrohttpd: [^\n]*431', err)
        assert.matches("level=info msg=stopped", err)
    end)
end)

describe("an error in a callback #integration", function()
    after_each(h.cleanup)

    it("of a timer is logged as one line, and the loop goes on", function()
        local c = child([[
local core = require("phonehome.core")
local fired = 0
core.timer(0, function() error('timer "boom" = \\ bad') end)
core.timer(0, function() fired = fired + 1 end)
core.timer(30, function() fired = fired + 1 end)
core.run()
print("returned", fired)
]])
        assert.are.equal(0, h.exit_code(c, 30))
        assert.are.equal("returned\t2\n", h.slurp(c.out))
        local err = lines(h.slurp(c.err))
        assert.are.equal(1, #err)
        assert.matches('^level=error msg="callback failed" error=".*"$', err[1])
        has([[timer \"boom\" = \\ bad\nstack traceback:\n]], err[1])
    end)

    it("of a collector request answers that request 500, and the server keeps serving", function()
        local c = child([[
local core = require("phonehome.core")
local server = assert(core.httpd({ listen = "127.0.0.1:0", handler = function(req)
    if req.path == "/boom" then error("handler boom") end
    return 200, "still here", "text/plain"
end }))
local f = assert(io.open(DIR .. "/port.tmp", "w"))
f:write(server:port())
f:close()
os.rename(DIR .. "/port.tmp", DIR .. "/port")
local stop
stop = core.signal("SIGTERM", function()
    server:close()
    stop:close()
end)
core.run()
print("returned")
]])
        local url = "http://127.0.0.1:" .. h.wait_for(c.work .. "/port", "(%d+)", 30)
        assert.are.equal(500, (h.http(url .. "/boom")))
        local status, body = h.http(url .. "/ok")
        assert.are.equal(200, status)
        assert.are.equal("still here", body)
        status = h.http(url .. "/boom")
        assert.are.equal(500, status)
        h.sh("kill -TERM " .. c.pid)
        assert.are.equal(0, h.exit_code(c, 30))
        assert.are.equal("returned\n", h.slurp(c.out))
        local err = lines(h.slurp(c.err))
        assert.are.equal(2, #err)
        for _, line in ipairs(err) do
            assert.matches('^level=error msg="callback failed" error=".*handler boom.*"$', line)
        end
    end)
end)

describe("the parts loaded on first use #integration", function()
    after_each(h.cleanup)

    -- the dynamic loader lists each library as it initialises it
    local function libraries(args)
        local r = h.run(args, { LD_DEBUG = "libs" })
        local libs = {}
        for path in r.err:gmatch("calling init: (%S+)") do libs[#libs + 1] = path end
        return table.concat(libs, "\n"), r
    end

    it("stay out of `show`; `collect` maps SQLite and libmicrohttpd but not libcurl", function()
        local dir = h.tmpdir()
        -- a product that reads no source (the bundled ones read their product's)
        h.write(dir .. "/p.lua", h.script("p", '{ name = "n", type = "int", '
            .. 'description = "d", value = 1 },'))
        local libs, r = libraries({ "show", "p", "--scripts", dir, "--data-dir", dir })
        assert.are.equal(0, r.code, r.err)
        assert.matches("libuv", libs)
        for _, lib in ipairs({ "libcurl", "libmicrohttpd", "libsqlite3", "libjansson", "libpq",
                               "http_client.so", "http_server.so", "sqlite.so",
                               "json_strict.so", "pg.so" }) do
            assert.is_nil(libs:find(lib, 1, true), lib .. " mapped by show")
        end
        libs, r = libraries({ "collect", "--listen", "nowhere", "--db", dir .. "/r.db" })
        assert.are.equal(1, r.code)
        assert.is_truthy(libs:find("sqlite.so", 1, true))
        assert.is_nil(libs:find("libcurl", 1, true))
    end)
end)
