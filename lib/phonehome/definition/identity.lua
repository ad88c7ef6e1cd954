-- The identity section of a definition: the file its instance id is kept in (a plain
-- name in the data directory, such as Coroot's instance.uuid) and the report field that
-- carries it, which the collector counts distinct instances by.
local schema = require("phonehome.definition.schema")

local M = {}

-- A plain file name: no directory part, not hidden.
function M.plain_file_name(v)
    return type(v) == "string" and v ~= "" and not v:find("/") and not v:match("^%.")
end

-- The declaration of a string field at a dotted path ("instance.uuid"), if any.
function M.field_at(list, path)
    if type(path) ~= "string" then return nil end
    local f
    for part in path:gmatch("[^%.]+") do
        if type(list) ~= "table" then return nil end
        f = nil
        for _, g in ipairs(list) do
            if type(g) == "table" and g.name == part then f = g end
        end
        if not f then return nil end
        list = f.fields
    end
    return f and f.type == "string" and f or nil
end

-- check(def, problem): identity = { file = "name", field = "dotted.path" }, both optional.
function M.check(def, problem)
    local id = def.identity
    if id == nil then return end
    if type(id) ~= "table" then
        problem("identity", "identity must be { file = \"name\", field = \"dotted.path\" }")
        return
    end
    schema.unknown_keys(id, { file = true, field = true }, problem, "identity")
    if id.file ~= nil and not M.plain_file_name(id.file) then
        problem("identity", "identity.file must be a plain file name")
    end
    if id.field ~= nil and not M.field_at(def.fields, id.field) then
        problem("identity", "identity.field " .. schema.describe(id.field)
            .. " is not a declared string field")
    end
end

-- The value of the identity field in a decoded report, if it is a string.
function M.of_report(def, report)
    local path = def.identity and def.identity.field
    if not path then return nil end
    local v = report
    for part in path:gmatch("[^%.]+") do
        if type(v) ~= "table" then return nil end
        v = v[part]
    end
    return type(v) == "string" and v or nil
end

return M
