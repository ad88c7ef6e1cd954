-- The strict TOML parser: MongooseIM's config shapes, every scalar kind, and refusals by line.
local toml = require("phonehome.sources.toml")

local function parse(text)
    local t, err = toml.parse(text)
    assert(t, err)
    return t
end

local function refused(text, line, what)
    local t, err = toml.parse(text)
    assert.is_nil(t)
    assert.is_string(err)
    assert.are.equal(("line %d: "):format(line), err:match("^line %d+: "), err)
    if what then assert.truthy(err:find(what, 1, true), err) end
end

describe("toml", function()
    it("reads a MongooseIM config to the expected tables", function()
        local t = parse([==[
# mongooseim.toml, as shipped, trimmed
[general]
  hosts = ["localhost"]
  loglevel = "warning"
  default_server_domain = "localhost"
  registration_timeout = "infinity"
  language = "en"
  all_metrics_are_global = false
  sm_backend = "mnesia"
  max_fsm_queue = 1000

[[listen.http]]
  port = 5280
  transport.num_acceptors = 10
  transport.max_connections = 1024

  [[listen.http.handlers.mod_bosh]]
    host = "_"
    path = "/http-bind"

  [[listen.http.handlers.mod_websockets]]
    host = "_"
    path = "/ws-xmpp"

[[listen.http]]
  port = 5285
  tls.certfile = "priv/ssl/fake_cert.pem"
  tls.keyfile = 'priv/ssl/fake_key.pem'

[[listen.c2s]]
  port = 5222
  access = "c2s"
  shaper = "c2s_shaper"
  max_stanza_size = 65536

[internal_databases.mnesia]

[outgoing_pools.rdbms.default]
  scope = "global"
  workers = 5

  [outgoing_pools.rdbms.default.connection]
    driver = "pgsql"
    host = "localhost"
    database = "mongooseim"
    username = "mongooseim"
    password = "mongooseim"
    tls.required = true

[modules.mod_disco]
  users_can_see_hidden_services = false

[modules.mod_mam]
  backend = "rdbms"
  pm = {}
  muc.host = "muc.@HOST@"

[shaper.normal]
  max_rate = 1000

[acl]
  local = [
    {user_regex = ""},
  ]
]==])
        assert.are.same({
            hosts = { "localhost" }, loglevel = "warning", default_server_domain = "localhost",
            registration_timeout = "infinity", language = "en", all_metrics_are_global = false,
            sm_backend = "mnesia", max_fsm_queue = 1000,
        }, t.general)
        assert.are.same({
            {
                port = 5280,
                transport = { num_acceptors = 10, max_connections = 1024 },
                handlers = {
                    mod_bosh = { { host = "_", path = "/http-bind" } },
                    mod_websockets = { { host = "_", path = "/ws-xmpp" } },
                },
            },
            {
                port = 5285,
                tls = { certfile = "priv/ssl/fake_cert.pem", keyfile = "priv/ssl/fake_key.pem" },
            },
        }, t.listen.http)
        assert.are.equal(65536, t.listen.c2s[1].max_stanza_size)
        assert.are.same({ mnesia = {} }, t.internal_databases)
        assert.are.same({
            scope = "global",
            workers = 5,
            connection = {
                driver = "pgsql", host = "localhost", database = "mongooseim",
                username = "mongooseim", password = "mongooseim", tls = { required = true },
            },
        }, t.outgoing_pools.rdbms.default)
        assert.are.same({ users_can_see_hidden_services = false }, t.modules.mod_disco)
        assert.are.same({ backend = "rdbms", pm = {}, muc = { host = "muc.@HOST@" } },
            t.modules.mod_mam)
        assert.are.same({ max_rate = 1000 }, t.shaper.normal)
        assert.are.same({ { user_regex = "" } }, t.acl["local"])
        assert.are.equal("integer", math.type(t.general.max_fsm_queue))
    end)

    it("reads bare, quoted and dotted keys", function()
        local t = parse([[
bare_key-1 = 1
"quoted key" = 2
'literal "key"' = 3
a . "b.c" . d = 4
a.e = 5
"" = 6
"\u00e9" = 7
]])
        assert.are.same({
            ["bare_key-1"] = 1, ["quoted key"] = 2, ['literal "key"'] = 3,
            a = { ["b.c"] = { d = 4 }, e = 5 }, [""] = 6, ["é"] = 7,
        }, t)
    end)

    it("reads basic and literal strings with their escapes", function()
        local t = parse([[
a = "tab\there \"q\" back\\slash \b\f\n\r"
b = "\u00e9\U0001F600"
c = 'C:\Users\nodejs\templates'
d = '<\i\c*\s*>'
e = "with 'single' and # not a comment" # a comment
f = "tab	inside"
]])
        assert.are.equal('tab\there "q" back\\slash \b\f\n\r', t.a)
        assert.are.equal("é😀", t.b)
        assert.are.equal([[C:\Users\nodejs\templates]], t.c)
        assert.are.equal([[<\i\c*\s*>]], t.d)
        assert.are.equal("with 'single' and # not a comment", t.e)
        assert.are.equal("tab\tinside", t.f)
    end)

    it("reads multi-line strings, trimming the first newline and ending backslashes", function()
        local t = parse('a = """\nRoses are red\nViolets are blue"""\n'
            .. 'b = """\\\n    The quick brown \\\n\n    fox."""\n'
            .. 'c = """Here are two quotation marks: "". Simple enough."""\n'
            .. 'd = """""quoted"""""\n'
            .. "e = '''\nThe first newline is\ntrimmed in raw strings.\n   \\n stays'''\n"
            .. "f = ''''That,' she said, 'is still pointless.''''\n"
            .. 'g = """crlf\r\nkept"""\r\n')
        assert.are.equal("Roses are red\nViolets are blue", t.a)
        assert.are.equal("The quick brown fox.", t.b)
        assert.are.equal('Here are two quotation marks: "". Simple enough.', t.c)
        assert.are.equal('""quoted""', t.d)
        assert.are.equal("The first newline is\ntrimmed in raw strings.\n   \\n stays", t.e)
        assert.are.equal("'That,' she said, 'is still pointless.'", t.f)
        assert.are.equal("crlf\r\nkept", t.g)
    end)

    it("reads integers in every base, exactly across the int64 range", function()
        local t = parse([[
a = 99
b = +17
c = -17
d = 0
e = 1_000_000
f = 0xDEAD_beef
g = 0o755
h = 0b1101_0110
max = 9223372036854775807
min = -9223372036854775808
hmax = 0x7FFFFFFFFFFFFFFF
zero = -0
]])
        assert.are.same({
            a = 99, b = 17, c = -17, d = 0, e = 1000000, f = 0xDEADBEEF, g = 493, h = 214,
            max = math.maxinteger, min = math.mininteger, hmax = math.maxinteger, zero = 0,
        }, t)
        for k, v in pairs(t) do assert.are.equal("integer", math.type(v), k) end
    end)

    it("reads floats, with exponents, underscores, inf and nan", function()
        local t = parse([[
a = 1.0
b = 3.1415
c = -0.01
d = 5e+22
e = 1e06
f = -2E-2
g = 6.626e-34
h = 224_617.445_991
i = inf
j = +inf
k = -inf
l = nan
m = -nan
n = 0e0
]])
        assert.are.equal(1.0, t.a)
        assert.are.equal(3.1415, t.b)
        assert.are.equal(-0.01, t.c)
        assert.are.equal(5e22, t.d)
        assert.are.equal(1e6, t.e)
        assert.are.equal(-0.02, t.f)
        assert.are.equal(6.626e-34, t.g)
        assert.are.equal(224617.445991, t.h)
        assert.are.equal(math.huge, t.i)
        assert.are.equal(math.huge, t.j)
        assert.are.equal(-math.huge, t.k)
        assert.is_true(t.l ~= t.l)
        assert.is_true(t.m ~= t.m)
        for _, k in ipairs({ "a", "d", "e", "n" }) do
            assert.are.equal("float", math.type(t[k]), k)
        end
    end)

    it("reads booleans and returns dates and times as their text", function()
        local t = parse([[
yes = true
no = false
odt1 = 1979-05-27T07:32:00Z
odt2 = 1979-05-27T00:32:00.999999-07:00
odt3 = 1979-05-27 07:32:00+05:30
ldt = 1979-05-27T07:32:00
ld = 1979-05-27
lt = 00:32:00.5
]])
        assert.are.same({
            yes = true, no = false, odt1 = "1979-05-27T07:32:00Z",
            odt2 = "1979-05-27T00:32:00.999999-07:00", odt3 = "1979-05-27 07:32:00+05:30",
            ldt = "1979-05-27T07:32:00", ld = "1979-05-27", lt = "00:32:00.5",
        }, t)
    end)

    it("reads arrays over lines, with comments, trailing commas and mixed types", function()
        local t = parse([[
a = [ 1, 2, 3 ]
b = [
  "x", # first
  # between
  'y',
]
c = [ [ 1, 2 ], ["a", 'b'], [] ]
d = [ 0.1, "two", { x = 1 }, true ]
e = []
]])
        assert.are.same({ 1, 2, 3 }, t.a)
        assert.are.same({ "x", "y" }, t.b)
        assert.are.same({ { 1, 2 }, { "a", "b" }, {} }, t.c)
        assert.are.same({ 0.1, "two", { x = 1 }, true }, t.d)
        assert.are.same({}, t.e)
    end)

    it("reads inline tables, with dotted keys inside", function()
        local t = parse([[
name = { first = "Tom", last = "Preston-Werner" }
point = { x = 1, y = 2 }
animal = { type.name = "pug" }
nested = { a = { b = { c = [1] } } }
]])
        assert.are.same({ first = "Tom", last = "Preston-Werner" }, t.name)
        assert.are.same({ x = 1, y = 2 }, t.point)
        assert.are.same({ type = { name = "pug" } }, t.animal)
        assert.are.same({ a = { b = { c = { 1 } } } }, t.nested)
    end)

    it("lets a table be defined after its sub-tables, and sub-tables of dotted keys", function()
        local t = parse([[
[x.y.z.w]
a = 1
[x]
b = 2
[fruit]
apple.color = "red"
apple.taste.sweet = true
[fruit.apple.texture]
smooth = true
]])
        assert.are.same({ y = { z = { w = { a = 1 } } }, b = 2 }, t.x)
        assert.are.same({ apple = {
            color = "red", taste = { sweet = true }, texture = { smooth = true },
        } }, t.fruit)
    end)

    it("reads an empty document and one of comments and blank lines", function()
        assert.are.same({}, parse(""))
        assert.are.same({}, parse("# only\n\n   \t\r\n# comments"))
        assert.are.same({ a = 1 }, parse("a = 1"))
    end)

    describe("refuses", function()
        local cases = {
            { "a = 1\na = 2\n", 2, "key 'a' is already defined" },
            { "[a]\nx = 1\n\n[a]\n", 4, "table 'a' is already defined" },
            { "a = 1\n[a.b]\n", 2, "not a table" },
            { "a.b = 1\na.b.c = 2\n", 2, "already defined" },
            { "[fruit]\napple.color = 'red'\n[fruit.apple]\n", 3, "already defined" },
            { "[a.b]\nx = 1\n[a]\nb.y = 2\n", 4, "already defined" },
            { "a = { x = 1 }\n[a.y]\n", 2, "not a table" },
            { "a = { x = 1 }\na.y = 2\n", 2, "already defined" },
            { "a = [1]\n[[a]]\n", 2, "not an array of tables" },
            { "[[a]]\n[a]\n", 2, "already defined" },
            { "a = 1\na.b = 2\n", 2, "key 'a' is already defined" },
            { "[a]\n[a.b]\n[a.b]\n", 3, "table 'a.b' is already defined" },
            { "a = {}\n[a]\n", 2, "table 'a' is already defined" },
            { "a = [{ b = 1 }]\n[a.c]\n", 2, "not a table" },
            { "a = 0xFFFFFFFFFFFFFFFF\n", 1, "out of range" },
            { "a = -1e400\n", 1, "out of range" },
            { "a = 1979-05-27Tjunk\n", 1, "invalid time" },
            { "a = 1979-05-27 x\n", 1, "after a value" },
            { "a = 07:32\n", 1, "invalid time" },
            { "a = \"bad \\q escape\"\n", 1, "invalid escape" },
            { "x = 1\na = \"\\uD800\"\n", 2, "not a Unicode scalar value" },
            { "a = 1\n\nb = \"\\u12\"\n", 3, "hex digits" },
            { "a = \"unterminated\nb = 1\n", 1, "newline in a single-line string" },
            { "a = 'ctrl\1'\n", 1, "control character 1" },
            { "\na = \"\"\"ctrl\127\"\"\"\n", 2, "control character 127" },
            { "a = 1 # bell\7\n", 1, "control character in a comment" },
            { "a = 1\nb = 2 3\n", 2, "unexpected '3' after a value" },
            { "[a] x = 1\n", 1, "after a table header" },
            { "a = 1\nb = \"x\" \"y\"\n", 2, "after a value" },
            { "a = 9223372036854775808\n", 1, "out of range" },
            { "a = 1\nb = -9223372036854775809\n", 2, "out of range" },
            { "a = 0x8000000000000000\n", 1, "out of range" },
            { "a = 0o1777777777777777777777\n", 1, "out of range" },
            { "a = 012\n", 1, "leading zero" },
            { "a = 1__0\n", 1, "invalid value" },
            { "a = _1\n", 1, "invalid value" },
            { "a = 1_\n", 1, "invalid value" },
            { "a = 0x_1\n", 1, "invalid integer" },
            { "a = 0b12\n", 1, "invalid integer" },
            { "a = +0x1\n", 1, "invalid value" },
            { "a = 1.\n", 1, "invalid value" },
            { "a = .5\n", 1, "invalid value" },
            { "a = 1e\n", 1, "invalid value" },
            { "a = 1e400\n", 1, "out of range" },
            { "a = True\n", 1, "invalid value" },
            { "a = \n", 1, "expected a value" },
            { "= 1\n", 1, "expected a key" },
            { "a\n", 1, "expected '='" },
            { "\n\na = [1, 2\nb = 3\n", 4, "expected ',' or ']'" },
            { "a = [,]\n", 1, "expected a value" },
            { "a = { x = 1, }\n", 1, "trailing comma" },
            { "a = { x = 1,\n y = 2 }\n", 1, "expected a key" },
            { "a = { x = 1 y = 2 }\n", 1, "expected ',' or '}'" },
            { "a = { x = 1, x = 2 }\n", 1, "already defined" },
            { "[a\n", 1, "expected ']'" },
            { "[[a]\n", 1, "expected ']]'" },
            { "[]\n", 1, "expected a key" },
            { "a = 1\n\"\"\"k\"\"\" = 2\n", 2, "multi-line" },
            { "a = 1\rb = 2\n", 1, "carriage return" },
            { "ok = 1\nbad = \"\255\"\n", 2, "invalid UTF-8" },
            { "ok = 1\n\nbad = \"\237\160\128\"\n", 3, "invalid UTF-8" },
            { "a = \"\"\"x\"\"\"\"\"\"\n", 1, "too many quotes" },
            { "a = '''x\n\ny\n", 1, "unterminated string" },
            { "a = 1979-13-27\n", 1, "invalid date" },
            { "a = 1979-05-27T25:00:00\n", 1, "invalid time" },
            { "a = 1\nb = \"\"\"x \\ y\"\"\"\n", 2, "invalid escape" },
        }
        for i, c in ipairs(cases) do
            it(("malformed input %d on line %d (%s)"):format(i, c[2], c[3]), function()
                refused(c[1], c[2], c[3])
            end)
        end
    end)

    it("refuses input over 4 MiB and nesting over 64", function()
        refused(("#"):rep(4 * 1024 * 1024 + 1), 1, "input over")
        refused("a = " .. ("["):rep(65) .. ("]"):rep(65) .. "\n", 1, "nested too deeply")
        refused("\na = " .. ("{ b = "):rep(70) .. "1" .. (" }"):rep(70) .. "\n", 2, "nested")
        refused(("k."):rep(70) .. "k = 1\n", 1, "nested too deeply")
        refused("[" .. ("t."):rep(40) .. "t]\n" .. ("k."):rep(30) .. "k = 1\n", 2, "nested")
        refused("[" .. ("t."):rep(60) .. "t]\na = [[[[[1]]]]]\n", 2, "nested too deeply")
        local deep = parse(("k."):rep(60) .. "k = 1\n")
        for _ = 1, 61 do deep = deep.k end
        assert.are.equal(1, deep)
        local ok = parse("a = " .. ("["):rep(60) .. ("]"):rep(60) .. "\n")
        assert.are.equal("table", type(ok.a))
    end)

    it("refuses text that is not a string", function()
        local t, err = toml.parse(nil)
        assert.is_nil(t)
        assert.are.equal("line 1: TOML text must be a string", err)
    end)
end)
