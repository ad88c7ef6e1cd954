-- The identity section of a definition: the file its instance id is kept in (a plain
-- name in the data directory, such as Coroot's instance.uuid) and the report field that
-- carries it, which the collector counts distinct instances by.
local schema = require("phonehome.definition.schema")

local M = {}

-- A plain file name: letters, digits, ".", "-" and "_", not hidden (so not ".."), no
-- directory part; the host keeps it in the product's own directory.
function M.plain_file_name(v)
    return type(v) == "string" and #v <= 100 and v:match("^[%w_%-][%w_%-%.]*$") ~= nil
end

-- The problem with a file name a definition gives at key, if any.
function M.file_problem(key, v)
    if M.plain_file_name(v) then return nil end
    return key .. " " .. schema.describe(v) .. " must be a plain file name (letters, "
        .. "digits, ., - and _, not starting with .): it is kept in the product's own directory"
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

-- check(def, problem): identity = { file = "name", field = "dotted.path", value =
-- function(ctx), source = "name" | sources = { ... } }, all optional. value reads the
-- product's own instance id (a file such as Coroot's instance.uuid, a SQL row, an HTTP
-- field) from the sources it declares; phonehome's own file is the fallback.
function M.check(def, problem)
    local id = def.identity
    if id == nil then return end
    if type(id) ~= "table" then
        problem("identity", "identity must be { file = \"name\", field = \"dotted.path\" }")
        return
    end
    schema.unknown_keys(id, { file = true, field = true, value = true, source = true,
                              sources = true }, problem, "identity")
    if id.value ~= nil and type(id.value) ~= "function" then
        problem("identity", "identity.value must be a function(ctx) reading the product's id")
    end
    if id.file ~= nil and M.file_problem("identity.file", id.file) then
        problem("identity", M.file_problem("identity.file", id.file))
    end
    if id.field ~= nil and not M.field_at(def.fields, id.field) then
        problem("identity", "identity.field " .. schema.describe(id.field)
            .. " is not a declared string field")
    end
end

-- shared(defs) -> { { def, other } }: each definition that declares the same identity
-- file as another product's before it in the list. Each product keeps its own file, but
-- one name for two products' ids is a mistake waiting to happen (the data directory's old
-- layout made it one shared file, which only one of them can take over).
function M.shared(defs)
    local seen, out = {}, {}
    for _, def in ipairs(defs) do
        local file = type(def.identity) == "table" and def.identity.file
        if file then
            local other = seen[file]
            if not other then
                seen[file] = def
            elseif other.name ~= def.name then   -- not the same script given twice
                out[#out + 1] = { def, other }
            end
        end
    end
    return out
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
