-- Positions in a product script: the "file:line" a message about a definition path
-- ("schedule.first", "fields.instance.uuid") points at. Loaded before the sandbox drops
-- the debug library, whose getinfo it keeps to find the lines of value functions.
local getinfo = debug.getinfo

local M = {}

local Where = {}
Where.__index = Where

-- new(chunkname, source) -> the positions of one script.
function M.new(chunkname, source)
    local lines = {}
    for l in (source .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
    return setmetatable({ chunkname = chunkname, file = chunkname:gsub("^@", ""), lines = lines,
                          declared = {} }, Where)
end

-- The line of the first occurrence, at or after line `from`, of a key as `key =`,
-- `"key"` or `'key'`; nil when there is none.
function Where:find_line(key, from)
    local pat = "%f[%w_]" .. key:gsub("%p", "%%%0") .. "%s*="
    for i = from, #self.lines do
        local l = self.lines[i]
        if l:find('"' .. key .. '"', 1, true) or l:find("'" .. key .. "'", 1, true)
            or l:find(pat) then
            return i
        end
    end
    return nil
end

-- at(path [, line]) -> "file:line" of a definition path ("schedule.first",
-- "fields.instance.uuid[3]"): the line given when known, else the line of the nearest
-- field on the path declared with one (phonehome.fields), then a search of the source for
-- each further part of the path in turn.
function Where:at(path, line)
    if line then return self.file .. ":" .. line end
    local near = path
    while near ~= "" and not self.declared[near] do near = near:match("^(.*)[%.%[]") or "" end
    line = self.declared[near] or 1
    local from = line
    for part in path:sub(#near + 1):gmatch("[^%.%[%]]+") do
        local l = self:find_line(part, from)
        if l then from, line = l, l end
    end
    return self.file .. ":" .. line
end

-- declare(fields): learns the lines fields were declared on, by path ("fields.data.usage"),
-- and gives every field with a value function of the script and no line that function's.
function Where:declare(list, prefix)
    prefix = prefix or "fields"
    for i, f in ipairs(list) do
        if type(f) == "table" then
            local path = prefix .. "." .. tostring(f.name or ("#" .. i))
            if math.type(f.line) == "integer" then self.declared[path] = f.line end
            local info = type(f.value) == "function" and not f.line and getinfo(f.value, "S")
            if info and info.source == self.chunkname then f.line = info.linedefined end
            if type(f.fields) == "table" then self:declare(f.fields, path) end
        end
    end
end

return M
