-- phonehome collect stores only what is valid: strict JSON, nulls checked, int64 exact end
-- to end, a bounded share of connections for one client, a private database file.
-- #integration
local core = require("phonehome.core")
local json = require("phonehome.json")
local h = require("support.helper")

-- A scripts directory with the test product "t": every kind of field the checks meet.
local function scripts()
    local dir = h.tmpdir()
    h.write(dir .. "/t.lua", h.script("t", [[
        { name = "big", type = "int", description = "d",
          value = function() return math.maxinteger end },
        { name = "small", type = "int", description = "d",
          value = function() return math.mininteger end },
        { name = "maybe", type = "int", null = true, description = "d",
          value = function() return nil end },
        { name = "list", type = "array", items = "int", description = "d",
          value = function() return { 1, 2 } end },
        { name = "counts", type = "map", values = "int", description = "d",
          value = function() return { a = 1 } end },
        { name = "s", type = "string", description = "d", value = function() return "x" end },
]]))
    return dir
end

local function start(dir, extra)
    local args = { "--scripts", dir }
    for _, a in ipairs(extra or {}) do args[#args + 1] = a end
    return h.collector(args)
end

local function post(c, body)
    return h.http(c.url .. "/v1/report/t", { method = "POST", body = body,
                                            headers = { ["Content-Type"] = "application/json" } })
end

-- The bodies stored, byte for byte, read from the database itself.
local function bodies(c)
    if not core.exists(c.db) then return {} end
    local db = assert(core.db_open(c.db))
    local rows = assert(db:rows("SELECT body FROM reports ORDER BY id"))
    db:close()
    local out = {}
    for i, r in ipairs(rows) do out[i] = r.body end
    return out
end

-- A valid report of "t" as text, with the text of some members replaced:
-- report({ list = "[0x10]" }); false leaves a member out; extra is appended inside.
local MEMBERS = {
    { "big", "9223372036854775807" }, { "small", "-9223372036854775808" }, { "maybe", "null" },
    { "list", "[1,2]" }, { "counts", '{"a":1}' }, { "s", '"x"' },
}
local function report(over, extra)
    local out = {}
    for _, m in ipairs(MEMBERS) do
        local text = (over or {})[m[1]]
        if text == nil then text = m[2] end
        if text then out[#out + 1] = '"' .. m[1] .. '":' .. text end
    end
    if extra then out[#out + 1] = extra end
    return "{" .. table.concat(out, ",") .. "}"
end
local VALID = report()

describe("phonehome collect stores only what is valid #integration", function()
    local c, dir
    before_each(function()
        dir = scripts()
        c = start(dir)
    end)
    after_each(function()
        if c then h.sh("kill -9 " .. c.pid .. " 2>/dev/null") end
        h.cleanup()
    end)

    it("refuses with 400 every body that is not strict RFC 8259 JSON", function()
        local bad = {
            hex = report({ list = "[0x10]" }),
            leading_zero = report({ list = "[007]" }),
            plus = report({ list = "[+1]" }),
            nan = report({ list = "[NaN]" }),
            infinity = report({ list = "[Infinity]" }),
            control = report({ s = '"a\1b"' }),
            tab = report({ s = '"a\tb"' }),
            newline = report({ s = '"a\nb"' }),
            invalid_utf8 = report({ s = '"caf\xe9"' }),
            overlong_utf8 = report({ s = '"\xc0\xaf"' }),
            surrogate = report({ s = '"\\ud800"' }),
            key_not_utf8 = report({ counts = '{"\xff":1}' }),
            trailing = VALID .. " x",
            trailing_object = VALID .. "{}",
            duplicate = report({}, '"s":7'),
            duplicate_inner = report({ counts = '{"a":1,"a":"lots"}' }),
            too_big = report({ big = "9223372036854775808" }),
            too_small = report({ small = "-9223372036854775809" }),
            overflow = report({ list = "[1e999]" }),
            comma = report({ list = "[1,2,]" }),
            comment = report({}, "/* c */"),
            single_quotes = report({ s = "'x'" }),
            bom = "\xef\xbb\xbf" .. VALID,
        }
        for name, body in pairs(bad) do
            local status, answer = post(c, body)
            assert.are.equal(400, status, name .. ": " .. answer)
            local e = assert(json.decode(answer), name .. ": the answer is JSON").error
            assert(e:match("^body is not JSON: .* at byte %d+$"), name .. ": " .. answer)
        end
        assert.are.same({}, bodies(c))
    end)

    it("stores exactly the bytes it validated, int64 digits and escapes included", function()
        local body = ' { "big" : 9223372036854775807 , "small":-9223372036854775808,\n'
            .. '"maybe":null,"list":[1, -0, 2],"counts":{"caf\xc3\xa9":1,"b\\u00e9":2},'
            .. '"s":"\\u0000\\ud83d\\ude00\\/\\"x"}\n'
        assert.are.equal(201, (post(c, body)))
        assert.are.same({ body }, bodies(c))
    end)

    it("checks nulls against the definition instead of dropping them", function()
        local cases = {
            { report({ list = "[null]" }), "field 'list[1]': expected int, got null" },
            { report({ list = "[1,null,2]" }), "field 'list[2]': expected int, got null" },
            { report({ counts = '{"a":null}' }), "field 'counts[\"a\"]': expected int, got null" },
            { report({}, '"undeclared":null'),
              "field 'undeclared': key was not declared" },
            { report({ s = "null" }), "field 's': expected string, got null" },
            { report({ list = "null" }), "field 'list': expected array, got null" },
            { report({ counts = "null" }), "field 'counts': expected map, got null" },
            { report({ list = "{}" }), "field 'list': expected array, got object" },
            { report({ counts = "[]" }), "field 'counts': expected map, got array" },
        }
        for _, case in ipairs(cases) do
            local status, answer = post(c, case[1])
            assert.are.equal(422, status, case[1] .. ": " .. answer)
            assert.are.same({ case[2] }, json.decode(answer).reasons)
        end
        assert.are.same({}, bodies(c))
        -- null where the field allows it, and an empty array and map
        local ok = report({ list = "[]", counts = "{}" })
        assert.are.equal(201, (post(c, ok)))
        assert.are.same({ ok }, bodies(c))
    end)

    it("gets math.maxinteger and math.mininteger from the daemon exactly", function()
        local data = h.tmpdir()
        local r = h.run({ "run", "t", "--once", "--scripts", dir, "--data-dir", data,
                          "--endpoint", c.url })
        assert.are.equal(0, r.code, r.err)
        local stored = bodies(c)
        assert.are.equal(1, #stored, r.err)
        h.has('"big":9223372036854775807,"small":-9223372036854775808', stored[1])
        r = h.run({ "reports", "--db", c.db })
        assert.are.equal(0, r.code, r.err)
        h.has('"report":{"big":9223372036854775807,"small":-9223372036854775808,', r.out)
    end)

    it("creates the database and its -wal and -shm files readable by its owner only", function()
        assert.are.equal(201, (post(c, VALID)))
        for _, suffix in ipairs({ "", "-wal", "-shm" }) do
            assert.are.equal("600", h.sh("stat -c %a " .. h.quote(c.db .. suffix)), suffix)
        end
    end)
end)

describe("phonehome daemon and map keys #integration", function()
    after_each(h.cleanup)

    it("refuses to send a map key that is not UTF-8, naming the field", function()
        local dir = h.tmpdir()
        h.write(dir .. "/t.lua", h.script("t", [[
        { name = "counts", type = "map", values = "int", description = "d",
          value = function() return { ["caf\xe9"] = 1 } end },
]]))
        local r = h.run({ "show", "t", "--scripts", dir, "--data-dir", h.tmpdir() })
        assert.are_not.equal(0, r.code)
        assert.matches("field 'counts': map key .*not valid UTF%-8", r.err)
        assert.are.equal("", r.out)
    end)
end)

-- A shell driver on 127.0.0.1: opens n connections to port, each sending a request line
-- and then one header byte every 2 s, never finishing; in dir/closed it writes, every
-- 2 s, the seconds since it started and how many of its connections the server has
-- closed. It gives up after `seconds`, and is killed by the spec at the end.
local function slow_clients(port, n, seconds, dir)
    h.write(dir .. "/slow.sh", string.format([[
trap '' PIPE
fds=()
for i in $(seq %d); do
    exec {fd}<>/dev/tcp/127.0.0.1/%s || break
    printf 'GET /healthz HTTP/1.1\r\nX-Slow: ' >&$fd 2>/dev/null
    fds+=($fd)
done
echo ${#fds[@]} >%s/opened
start=$SECONDS
while [ $((SECONDS - start)) -lt %d ]; do
    closed=0
    for fd in "${fds[@]}"; do
        # the server sends nothing: readable means closed
        if read -t 0 -u $fd; then closed=$((closed + 1)); else printf a >&$fd 2>/dev/null; fi
    done
    echo "$((SECONDS - start)) $closed" >>%s/closed
    [ $closed -eq ${#fds[@]} ] && break
    sleep 2
done
]], n, port, dir, seconds, dir))
    return h.spawn_shell("bash " .. dir .. "/slow.sh")
end

describe("phonehome collect under slow clients #integration", function()
    after_each(h.cleanup)

    it("gives one client a bounded share of connections, each a deadline", function()
        local c = start(scripts())
        local dir = h.tmpdir()
        local driver = slow_clients(c.port, 1000, 40, dir)
        local ok, err = pcall(function()
            assert.are.equal(1000, tonumber(h.wait_for(dir .. "/opened", "(%d+)", 30)))
            -- another client is served at once, from a fresh connection
            local t0 = core.time()
            local status = h.http("http://127.0.0.1:" .. c.port .. "/healthz",
                                  { timeout = 5, interface = "127.0.0.2" })
            assert.are.equal(200, status)
            assert.is_true(core.time() - t0 < 5)
            -- all but --max-client-connections (64) were closed at once, before the deadline
            assert.is_true(tonumber(h.wait_for(dir .. "/closed", "(%d+) 936\n", 30)) < 10)
            -- the others, still sending a byte every 2 s, within the 10 s deadline
            local last = h.wait_for(dir .. "/closed", "\n(%d+) 1000\n", 40)
            assert.is_true(tonumber(last) <= 20, "all closed after " .. last .. " s")
            -- and the same client is served again
            assert.are.equal(200, (h.http(c.url .. "/healthz", { timeout = 5 })))
        end)
        h.sh("kill -9 " .. driver.pid .. " " .. c.pid .. " 2>/dev/null")
        assert(ok, err)
    end)

    it("takes --max-client-connections", function()
        local c = start(scripts(), { "--max-client-connections", "5" })
        local dir = h.tmpdir()
        local driver = slow_clients(c.port, 20, 40, dir)
        local ok, err = pcall(function()
            -- all but 5 closed at once, before the deadline
            assert.is_true(tonumber(h.wait_for(dir .. "/closed", "(%d+) 15\n", 30)) < 10)
            assert.are.equal(200, (h.http(c.url .. "/healthz",
                                          { timeout = 5, interface = "127.0.0.2" })))
        end)
        h.sh("kill -9 " .. driver.pid .. " " .. c.pid .. " 2>/dev/null")
        assert(ok, err)
        for _, bad in ipairs({ "0", "-1", "x", "1.5" }) do
            local r = h.run({ "collect", "--listen", "127.0.0.1:0", "--db",
                              h.tmpdir() .. "/r.db", "--max-client-connections", bad })
            assert.are.equal(1, r.code, bad)
            h.has("--max-client-connections: expected", r.err)
        end
    end)
end)
