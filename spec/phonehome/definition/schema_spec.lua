-- Checking values against field declarations: the guard before a report leaves.
local json = require("phonehome.json")
local schema = require("phonehome.definition.schema")

local function declared(list)
    local problems = {}
    schema.declare_list(list, "", function(path, msg)
        problems[#problems + 1] = path .. ": " .. msg
    end)
    return { type = "object", fields = list }, problems
end

local function check(decl, v)
    local problems = {}
    local out = schema.check(decl, v, "r", function(path, msg)
        problems[#problems + 1] = path .. ": " .. msg
    end)
    return out, problems
end

describe("schema", function()
    local decl = declared({
        { name = "n", type = "int", description = "d" },
        { name = "s", type = "string", description = "d", null = true },
        { name = "o", type = "object", description = "d", fields = {
            { name = "b", type = "bool", description = "d" } } },
        { name = "a", type = "array", items = "number", description = "d" },
        { name = "m", type = "map", values = "int", description = "d" },
    })

    it("accepts a value that matches, null where allowed", function()
        local out, problems = check(decl, { n = 1, o = { b = true }, a = { 1.5, 2 },
                                            m = { x = 1 } })
        assert.are.same({}, problems)
        assert.are.same({ n = 1, o = { b = true }, a = { 1.5, 2 }, m = { x = 1 } }, out)
    end)

    it("turns integral floats of int fields into integers, and no others", function()
        local out = check(decl, { n = 3.0, o = { b = false }, a = {}, m = {} })
        assert.are.equal("integer", math.type(out.n))
        local _, problems = check(decl, { n = 3.5, o = { b = false }, a = {}, m = {} })
        assert.are.same({ "r.n: expected int, got number 3.5" }, problems)
    end)

    it("names every wrong type, missing value and undeclared key", function()
        local _, problems = check(decl, { n = "7", o = { b = 1, extra = 2 }, a = { "x" },
                                          m = { k = true }, secret = "pii" })
        table.sort(problems)
        assert.are.same({
            'r.a[1]: expected number, got string "x"',
            'r.m["k"]: expected int, got boolean',
            'r.n: expected int, got string "7"',
            "r.o.b: expected bool, got integer 1",
            "r.o.extra: key was not declared",
            "r.secret: key was not declared",
        }, problems)
        _, problems = check(decl, { o = { b = true }, a = {}, m = {} })
        assert.are.same({ "r.n: missing required value (int)" }, problems)
    end)

    it("refuses strings that are not UTF-8 and numbers that are not finite", function()
        local _, problems = check({ type = "string" }, "\xff\xfe")
        assert.matches("not valid UTF%-8", problems[1])
        _, problems = check({ type = "number" }, 0 / 0)
        assert.matches("not a finite number", problems[1])
    end)

    it("refuses an array with holes or string keys", function()
        local _, problems = check({ type = "array", items = { type = "int" } }, { 1, nil, 3 })
        assert.are.equal(1, #problems)
        _, problems = check({ type = "array", items = { type = "int" } }, { x = 1 })
        assert.are.equal(1, #problems)
    end)

    it("takes json.null as null: refused where the field does not allow it", function()
        local null = json.null
        local _, problems = check(decl, { n = 1, s = null, o = { b = true }, a = { 1, null },
                                          m = { x = null }, extra = null })
        table.sort(problems)
        assert.are.same({
            "r.a[2]: expected number, got null",
            "r.extra: key was not declared",
            'r.m["x"]: expected int, got null',
        }, problems)
        _, problems = check(decl, { n = null, o = null, a = {}, m = {} })
        table.sort(problems)
        assert.are.same({ "r.n: expected int, got null", "r.o: expected object, got null" },
                        problems)
    end)

    it("strict, takes only marked arrays for arrays, and never an array for an object", function()
        local function strict(d, v)
            local problems = {}
            schema.check(d, v, "r", function(path, msg)
                problems[#problems + 1] = path .. ": " .. msg
            end, true)
            return problems
        end
        local array = { type = "array", items = { type = "int" } }
        local map = { type = "map", values = { type = "int" } }
        assert.are.same({}, strict(array, json.array({ 1, 2 })))
        assert.are.same({ "r: expected array, got object" }, strict(array, {}))
        assert.are.same({ "r: expected array, got object" }, strict(array, { 1 }))
        assert.are.same({}, strict(map, {}))
        assert.are.same({ "r: expected map, got array" }, strict(map, json.array()))
        assert.are.same({ "r: expected object, got array" },
                        strict({ type = "object", fields = {} }, json.array()))
        -- not strict (a report being built), a plain sequence is an array
        assert.are.same({}, select(2, check(array, { 1, 2 })))
    end)

    it("refuses map keys that are not UTF-8, and names them in plain ASCII", function()
        local _, problems = check({ type = "map", values = { type = "int" } },
                                  { ["caf\xe9"] = 1, ["caf\xc3\xa9"] = 2 })
        assert.are.same({ 'r: map key "caf\\xe9" is not valid UTF-8' }, problems)
        _, problems = check({ type = "map", values = { type = "int" } }, { ["caf\xc3\xa9"] = "x" })
        assert.are.same({ 'r["caf\xc3\xa9"]: expected int, got string "x"' }, problems)
    end)

    it("reports bad declarations", function()
        local _, problems = declared({
            { name = "a", type = "integer", description = "d" },
            { name = "b", type = "array", description = "d" },
            { name = "c", type = "int" },
            { name = "a", type = "int", description = "d", colour = "red" },
        })
        table.sort(problems)
        assert.are.same({
            "a: field declared twice",
            "a: unknown key 'colour'",
            'a: unknown type string "integer" '
                .. '(string, int, number, bool, scalar, object, array, map)',
            "b: an array needs 'items' (the type of its elements)",
            "c: field has no description",
        }, problems)
    end)

    it("names types for documentation", function()
        assert.are.equal("array of string",
            schema.type_name({ type = "array", items = { type = "string" } }))
        assert.are.equal("int or null", schema.type_name({ type = "int", null = true }))
    end)
end)
