-- phonehome.fields: what each constructor declares and builds, messages at the line a
-- field was declared on, and no way through it to the debug library.
local F = require("phonehome.fields")
local json = require("phonehome.json")
local sandbox = require("phonehome.sandbox")
local settings = require("phonehome.definition.settings")
local h = require("support.helper")

-- A script whose fields start on line 7.
local function script(fields)
    return table.concat({
        'local F = require("phonehome.fields")',
        "return {",
        '    name = "t", description = "d", endpoint = "http://127.0.0.1:9/r",',
        '    schedule = { first = "5m", interval = "1h" }, optout = { default = "on" },',
        '    disclosure = { on = "on", off = "off" },',
        "    fields = {",
        fields,
        "    },",
        "}",
        "",
    }, "\n")
end

local function open(fields)
    local path = h.write(h.tmpdir() .. "/t.lua", script(fields))
    local p, errors = sandbox.open(path, { timeout = 0.3, memory = 8 * 1024 * 1024 })
    return p, errors, path
end

local function build(p, set)
    local s = assert(settings.resolve(p.def, set or {}, {}))
    return p:build({ settings = s, instance_id = "iid", session_id = "sid" })
end

-- The one field x of a script, its value computed by body.
local function value(body)
    return '        F.value("x", "string", "d", function() ' .. body .. " end),"
end

-- Whether a message of list starts with prefix.
local function has(list, prefix)
    for _, v in ipairs(list) do if v:sub(1, #prefix) == prefix then return true end end
    return false
end

describe("phonehome.fields", function()
    after_each(h.cleanup)

    it("gives each constructor's declaration the caller's line", function()
        local decl, line = F.count("c", "A count."), debug.getinfo(1, "l").currentline
        assert.are.same({ name = "c", type = "int", description = "A count.",
                          setting = { default = 0 }, line = line }, decl)
        local opts = { items = "string" }
        decl, line = F.setting("s", "array", "S.", {}, opts), debug.getinfo(1, "l").currentline
        assert.are.same({ name = "s", type = "array", description = "S.", items = "string",
                          setting = { default = {} }, line = line }, decl)
        local fn = function() end
        opts = { unit = "u" }
        decl, line = F.value("v", "int", "d", fn, opts), debug.getinfo(1, "l").currentline
        assert.are.same({ name = "v", type = "int", description = "d", value = fn, unit = "u",
                          line = line }, decl)
        decl, line = F.object("o", "d", {}), debug.getinfo(1, "l").currentline
        assert.are.same({ name = "o", type = "object", description = "d", fields = {},
                          line = line }, decl)
        decl, line = F.summary("m", "d", fn), debug.getinfo(1, "l").currentline
        assert.are.same({ "min", "max", "mean", "median", "mode" },
                        { decl.fields[1].name, decl.fields[2].name, decl.fields[3].name,
                          decl.fields[4].name, decl.fields[5].name })
        for _, f in ipairs(decl.fields) do assert.are.equal(line, f.line) end
        assert.is_true(F.setting("n", "string", "d").null)
        assert.is_false(F.setting("n", "string", "d", nil, { null = false }).null)
        assert.is_nil(F.setting("n", "string", "d", "x").null)
    end)

    it("builds the value each constructor promises", function()
        local p, errors = open([[
        F.count("c", "A count."),
        F.count("v", "A computed count.", { value = function() return 3 end, unit = "things" }),
        F.setting("s", "string", "A string.", "dflt"),
        F.setting("n", "string", "Null until set."),
        F.setting("a", "array", "Strings.", { "x" }, { items = "string" }),
        F.value("k", "number", "A constant.", 1.5, { unit = "u" }),
        F.object("o", "An object.", {
            F.value("f", "int", "Computed.", function(ctx) return #ctx.session_id end),
        }),
        F.instance_id("id", "The id."),
        F.summary("sum", "A summary.", function() return { 5, 2, 1, 2 } end, { unit = "ms" }),]])
        assert.is_nil(errors)
        assert.are.equal('{"c":0,"v":3,"s":"dflt","n":null,"a":["x"],"k":1.5,"o":{"f":3},'
            .. '"id":"iid","sum":{"min":1,"max":5,"mean":2.5,"median":2.0,"mode":2}}', build(p))
        local out = json.decode(build(p, { c = "4", n = "set", a = '["y","z"]' }))
        assert.are.equal(4, out.c)
        assert.are.equal("set", out.n)
        assert.are.same({ "y", "z" }, out.a)
        local d = p.def.fields
        assert.are.same({ name = "c", type = "int", description = "A count.", null = false,
                          setting = "c" }, d[1])
        assert.are.same({ "int", "things", false }, { d[2].type, d[2].unit, d[2].setting ~= nil })
        assert.are.same({ "string", true, "n" }, { d[4].type, d[4].null, d[4].setting })
        assert.are.same({ "array", "string" }, { d[5].type, d[5].items.type })
        assert.are.same({ "object", "ms", 5 }, { d[9].type, d[9].unit, #d[9].fields })
        local by_name = {}
        for _, s in ipairs(p.def.settings) do by_name[s.name] = s end
        assert.are.same({ name = "c", type = "int", default = 0, description = "A count." },
                        by_name.c)
        assert.is_nil(by_name.v)
        assert.are.same({ "x" }, by_name.a.default)
    end)

    it("reports a wrong declaration at the line of its constructor call", function()
        for _, case in ipairs({
            { 8, "unknown type string \"strng\"", 'F.setting("b", "strng", "d", "x"),' },
            { 8, "count 'b': value must be a function, got number",
              'F.count("b", "d", { value = 5 }),' },
            { 9, "field declared twice", 'F.value("b", "int", "d", 1),\nF.count("a", "again"),' },
            { 8, "default string \"seven\" is not a int", 'F.setting("b", "int", "d", "seven"),' },
            { 8, "unknown key 'colour'", 'F.count("b", "d", { colour = "red" }),' },
            { 8, "field has no description", 'F.value("b", "int", nil, 1),' },
            { 8, "count 'b': option 'setting' is set by count",
              'F.count("b", "d", { setting = "x" }),' },
            { 8, "summary 'b': samples must be a function, got nil", 'F.summary("b", "d"),' },
            { 10, "unknown type string \"in\"",
              'F.object("o", "d", {\n    F.count("c", "d"),\n    F.setting("b", "in", "d"),\n'
                  .. '}),' },
            -- a field of plain table in a constructor's object: found below the object's line
            { 10, "field has no source",
              'F.object("o", "d", {\n    F.count("c", "d"),\n    { name = "b", type = "int",\n'
                  .. '      description = "d" },\n}),' },
            { 8, "field has no source", 'F.value("b", "int",\n    "d"\n),' },
        }) do
            local line, msg, fields = case[1], case[2], case[3]
            local p, errors, path = open('F.count("a", "d"),\n' .. fields)
            assert.is_nil(p)
            assert.is_true(has(errors, path .. ":" .. line .. ": " .. msg),
                           msg .. " at line " .. line .. " in:\n" .. table.concat(errors, "\n"))
        end
    end)

    it("reports a failing value at the line of its field", function()
        for _, case in ipairs({
            { "field 'x': broke", 'F.value("x", "int", "d", function() error("broke", 0) end),' },
            { "field 'x': expected int, got string \"s\"",
              'F.value("x", "int", "d", function() return "s" end),' },
            { "field 'x': setting 'x' has no value; give one with --set t.x=VALUE",
              'F.setting("x", "string", "d", nil, { null = false }),' },
            { "field 'x': sample 2 is not a number: string",
              'F.summary("x", "d", function() return { 1, "a" } end),' },
            { "field 'x': samples must be a list, got number",
              'F.summary("x", "d", function() return 5 end),' },
            -- stopped: the line it was running
            { "field 'x': script exceeded its time limit of 300 ms",
              'F.value("x", "int", "d",\n    function() while true do end end),', 9 },
            { "field 'o.x': broke",
              'F.object("o", "d", {\n    F.value("x", "int", "d", function() error("broke", 0) '
                  .. 'end) }),', 9 },
        }) do
            local msg, fields, line = case[1], case[2], case[3] or 8
            local p, errors, path = open('F.count("a", "d"),\n' .. fields)
            assert.is_nil(errors)
            local json_text, build_errors = build(p)
            assert.is_nil(json_text)
            assert.are.equal(path .. ":" .. line .. ": " .. msg, build_errors[1])
        end
        -- an error with a position keeps it: the line that raised it, not the field's (7)
        local p, _, path = open('F.value("x", "int", "d", function()\n\n    error("broke")\nend),')
        local _, errors = build(p)
        assert.are.equal(path .. ":9: field 'x': broke", errors[1])
    end)

    it("gives scripts no way to debug or to the line of another file", function()
        local p, errors, path = open(table.concat({
            'F.value("x", "string", "d", function()',
            "    local stats = require('phonehome.stats')",
            "    local ok, err = pcall(stats.summary, setmetatable({}, { __len = F.summary }))",
            "    return table.concat({ tostring(F.getinfo), tostring(rawget(F, 'count')),",
            "        tostring(getmetatable(F)), tostring(ok), err,",
            "        tostring(coroutine.wrap(F.count)('c', 'd').line),",
            "        tostring(F.count('c', 'd').line) }, ' ')",
            "end),",
        }, "\n"))
        assert.is_nil(errors)
        local out = json.decode(build(p)).x
        -- the constructor was run by phonehome.stats: the line is still the script's
        assert.matches("^nil nil false false " .. path:gsub("%p", "%%%0") .. ":9: summary "
            .. "'table: [^']+': samples must be a function, got nil nil 13$", out)
        assert.is_nil(out:find("stats.lua", 1, true))

        -- the module holds its constructors only, and what they make holds no debug function
        local names = {}
        for k, v in pairs(F) do
            assert.are.equal("function", type(v))
            names[#names + 1] = k
        end
        table.sort(names)
        assert.are.same({ "count", "instance_id", "object", "setting", "summary", "value" }, names)
        local of_debug = {}
        for _, v in pairs(debug) do of_debug[v] = true end
        local function clean(v)
            assert.is_nil(of_debug[v])
            if type(v) == "table" then
                for k, x in pairs(v) do clean(k) clean(x) end
            end
        end
        local fn = function() end
        for _, decl in ipairs({ F.count("n", "d"), F.setting("n", "int", "d", 1),
                                F.value("n", "int", "d", fn), F.object("n", "d", {}),
                                F.instance_id("n", "d"), F.summary("n", "d", fn) }) do
            clean(decl)
        end

        for _, case in ipairs({
            { "return tostring(debug)", "undeclared global 'debug'" },
            { "return require('debug')", "module 'debug' is not available to scripts" },
            { "F.count = nil return 'x'", "module phonehome.fields is read-only (count)" },
        }) do
            p = assert(open(value(case[1])))
            local _, build_errors = build(p)
            assert.matches(case[2], build_errors[1], 1, true)
        end
    end)
end)
