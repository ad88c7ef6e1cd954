-- phonehome.core at the C boundary: misuse of a table argument names the field; a failure
-- of the environment returns nil, message, errno (nil when none) [, library code].
local core = require("phonehome.core")
local h = require("support.helper")

-- The message of the error fn(...) raises.
local function raised(fn, ...)
    local ok, err = pcall(fn, ...)
    assert.is_false(ok, "no error raised")
    return tostring(err)
end

local has = h.has

describe("a bad field of a table argument", function()
    local function nop() end

    it("is named with its argument and the types, for core.http", function()
        has("bad field 'url' in argument #1 (string expected, got number)",
            raised(core.http, { url = 1 }, nop))
        has("bad field 'timeout' in argument #1 (number expected, got string)",
            raised(core.http, { url = "http://127.0.0.1:9/", timeout = "5" }, nop))
        has("bad field 'headers' in argument #1 (",
            raised(core.http, { url = "http://127.0.0.1:9/", headers = { 1 } }, nop))
        has("bad field 'max_body' in argument #1 (",
            raised(core.http, { url = "http://127.0.0.1:9/", max_body = -1 }, nop))
    end)

    it("is named for core.url_parse", function()
        has("bad argument #1 to 'phonehome.core.url_parse' (string expected, got no value)",
            raised(core.url_parse))
    end)

    it("is named with its argument and the types, for core.sandbox", function()
        local entry = "phonehome.sandbox.entry"
        has("bad field 'memory' in argument #1 (integer expected, got string)",
            raised(core.sandbox, { path = package.path, entry = entry, memory = "x" }))
        has("bad field 'memory' in argument #1 (number has no integer representation)",
            raised(core.sandbox, { path = package.path, entry = entry, memory = 1e6 + 0.5 }))
        has("bad field 'entry' in argument #1 (string expected, got nil)",
            raised(core.sandbox, { path = package.path }))
        has("bad field 'memory' in argument #1 (",
            raised(core.sandbox, { path = "", entry = "x", memory = 10 }))
        has("bad field 'timeout' in argument #1 (",
            raised(core.sandbox, { path = "", entry = "x", timeout = -1 }))
    end)

    it("is named with its argument and the types, for core.httpd", function()
        has("bad field 'listen' in argument #1 (string expected, got number)",
            raised(core.httpd, { listen = 5, handler = nop }))
        has("bad field 'handler' in argument #1 (function expected, got nil)",
            raised(core.httpd, { listen = "127.0.0.1:0" }))
        has("bad field 'max_body' in argument #1 (",
            raised(core.httpd, { listen = "127.0.0.1:0", handler = nop, max_body = 0 }))
        has("bad field 'max_client_connections' in argument #1 (must be from 1 to 1000)",
            raised(core.httpd, { listen = "127.0.0.1:0", handler = nop,
                                 max_client_connections = 0 }))
        has("bad field 'header_timeout' in argument #1 (",
            raised(core.httpd, { listen = "127.0.0.1:0", handler = nop, header_timeout = 0 }))
        has("bad field 'request_timeout' in argument #1 (",
            raised(core.httpd, { listen = "127.0.0.1:0", handler = nop, header_timeout = 10,
                                 request_timeout = 5 }))
    end)
end)

describe("a failure of the environment", function()
    after_each(h.cleanup)

    it("from SQLite: nil, message, errno or nil, extended result code", function()
        local dir = h.tmpdir()
        h.write(dir .. "/junk.db", string.rep("not a database at all ", 100))
        local db = assert(core.db_open(dir .. "/junk.db"))
        local ok, msg, errno, code = db:exec("SELECT count(*) FROM sqlite_master")
        assert.is_nil(ok)
        assert.matches("file is not a database", msg)
        assert.is_nil(errno)
        assert.are.equal(26, code)   -- SQLITE_NOTADB
        db:close()

        db = assert(core.db_open(dir .. "/good.db"))
        assert(db:exec("CREATE TABLE t (k INTEGER UNIQUE)"))
        assert(db:run("INSERT INTO t VALUES (?)", 1))
        local changes, err, no, extended = db:run("INSERT INTO t VALUES (?)", 1)
        assert.is_nil(changes)
        assert.matches("UNIQUE", err)
        assert.is_nil(no)
        assert.are.equal(2067, extended)   -- SQLITE_CONSTRAINT_UNIQUE
        db:close()

        local none, why, eno, cant = core.db_open(dir .. "/missing/dir/r.db")
        assert.is_nil(none)
        assert.matches("missing/dir/r%.db", why)
        assert.are.equal(2, eno)           -- ENOENT, from sqlite3_system_errno
        assert.are.equal(14, cant & 0xff)  -- SQLITE_CANTOPEN
    end)

    it("from files and libuv: nil, message, errno, and nothing more", function()
        local dir = h.tmpdir()
        local r = table.pack(core.readfile(dir .. "/nope"))
        assert.are.equal(3, r.n)
        assert.is_nil(r[1])
        assert.matches("nope", r[2])
        assert.are.equal(2, r[3])   -- ENOENT
        r = table.pack(core.listdir(dir .. "/nope"))
        assert.are.equal(3, r.n)
        assert.are.equal(2, r[3])   -- UV_ENOENT made positive
        r = table.pack(core.write_atomic(dir .. "/no/such/file", "x"))
        assert.are.equal(3, r.n)
        assert.are.equal(2, r[3])
    end)
end)

describe("core.json_strict", function()
    local null, array = setmetatable({}, { __name = "null" }), {}
    local function parse(text) return core.json_strict(text, null, array) end

    it("gives integers exactly in int64, other numbers as floats, null as given", function()
        local v = assert(parse('{"max":9223372036854775807,"min":-9223372036854775808,'
            .. '"f":1.0,"e":1e2,"z":-0,"n":null,"a":[1,null,"x\\u0000y"],"o":{}}'))
        assert.are.equal(math.maxinteger, v.max)
        assert.are.equal(math.mininteger, v.min)
        assert.are.equal("integer", math.type(v.max))
        assert.are.equal("float", math.type(v.f))
        assert.are.equal("float", math.type(v.e))
        assert.are.equal("integer", math.type(v.z))
        assert.are.equal(null, v.n)
        assert.are.equal(3, #v.a)
        assert.are.equal(null, v.a[2])
        assert.are.equal("x\0y", v.a[3])
        assert.are.equal(array, getmetatable(v.a))
        assert.is_nil(getmetatable(v.o))
        assert.are.equal(7, parse(" 7 "))
        assert.is_nil(getmetatable(core.json_strict("[]", null)))
    end)

    it("refuses all that RFC 8259 does not allow, duplicate keys and int64 overflow", function()
        for _, text in ipairs({ "0x10", "007", "+1", "-", "1.", ".5", "NaN", "Infinity",
                                "-Infinity", '"a\1b"', '"a\tb"', '"\xff"', '"\xc0\xaf"',
                                '"\xed\xa0\x80"',
                                '"\\ud800"', "[1,]", '{"a":1,}', "{'a':1}", '{"a":1,"a":1}',
                                "[1] [2]", "1 x", "", " ", "9223372036854775808",
                                "-9223372036854775809", "1e999", "\xef\xbb\xbf{}", "[/**/]",
                                string.rep("[", 3000) .. string.rep("]", 3000) }) do
            local r = table.pack(parse(text))
            assert.are.equal(3, r.n, text)
            assert.is_nil(r[1], text)
            assert.matches(" at byte %d+$", r[2])
            assert.is_nil(r[2]:find("[^\32-\126]"), "printable: " .. r[2])
        end
    end)

    it("names its arguments", function()
        has("bad argument #1 to", raised(core.json_strict))
        has("bad argument #2 to", raised(core.json_strict, "1"))
        has("bad argument #3 to", raised(core.json_strict, "1", null, 5))
    end)
end)

describe("URLs and answers as libcurl reads them", function()
    after_each(h.cleanup)

    it("core.url_parse: the parts, the scheme lower-cased, hosts normalised", function()
        assert.are.same({ url = "http://u:p@[::1]:8/x?a=1#f", scheme = "http", user = "u",
                          password = "p", host = "[::1]", port = 8, path = "/x", query = "a=1",
                          fragment = "f" },
            core.url_parse("HTTP://u:p@[0:0:0:0:0:0:0:1]:8/x?a=1#f"))
        assert.are.same({ url = "http://localhost:1@example.com/", scheme = "http",
                          user = "localhost", password = "1", host = "example.com", path = "/" },
            core.url_parse("http://localhost:1@example.com/"))
        assert.are.equal("127.0.0.1", core.url_parse("http://0x7f.1/").host)
        assert.are.equal("ftp", core.url_parse("ftp://x/y").scheme)
        local r = table.pack(core.url_parse("http://a b/"))
        assert.are.same({ n = 4, nil, "Bad hostname", nil, 21 }, r)   -- CURLUE_BAD_HOSTNAME
        r = table.pack(core.url_parse("http://x\0y/"))
        assert.are.same({ n = 3, nil, "the URL holds a NUL byte", nil }, r)
    end)

    it("core.http: Retry-After in seconds from a delay or a date; a redirect's Location",
        function()
        local ep = h.endpoint("429/7,503/date:9999,429/date:2000,429/soon,301>/moved,307,201")
        local got = {}
        for i = 1, 7 do
            core.http({ url = ep.url .. "/r", timeout = 10 }, function(res) got[i] = res end)
            core.run()
        end
        ep.stop()
        assert.are.equal(7, got[1].retry_after)
        -- the end of year 9999, from now: within a minute of what this clock says
        local want = 253402300799 - os.time()
        assert.is_true(math.abs(got[2].retry_after - want) < 60, tostring(got[2].retry_after))
        assert.is_nil(got[3].retry_after)   -- in the past
        assert.is_nil(got[4].retry_after)   -- unreadable
        assert.are.equal(301, got[5].status)
        assert.are.equal(ep.url .. "/moved", got[5].location)
        assert.is_nil(got[6].location)
        assert.are.same({ 201, nil, nil }, { got[7].status, got[7].retry_after, got[7].location })
    end)
end)
