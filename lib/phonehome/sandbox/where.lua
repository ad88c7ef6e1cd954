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
    return setmetatable({ file = chunkname:gsub("^@", ""), lines = lines }, Where)
end

-- The line of the first occurrence, at or after line `from`, of a key as `key =`,
-- `"key"` or `'key'`; nil when there is none.
function Where:find_line(key, from)
    local pat = "%f[%w_]" .. key:gsub("%p", "%%%0") .. "%s*="
    for i = from, #self.lines do
        local l = self.lines[i]
        if l:find('"' .. key .. '"', 1, true) or l:find("'" .. key .. "'", 1, true) or l:find(pat) then
            return i
        end
    end
    return nil
end

-- at(path [, line]) -> "file:line" of a definition path: the line given when known,
-- else a search of the source for each part of the path in turn.
function Where:at(path, line)
    if line then return self.file .. ":" .. line end
    line = 1
    local from = 1
    for part in path:gmatch("[^%.%[%]]+") do
        local l = self:find_line(part, from)
        if l then from, line = l, l end
    end
    return self.file .. ":" .. line
end

-- Sets f.line for every field that has a value function, recursively.
function M.mark_lines(list)
    for _, f in ipairs(list) do
        if type(f) == "table" then
            if type(f.value) == "function" then f.line = getinfo(f.value, "S").linedefined end
            if type(f.fields) == "table" then M.mark_lines(f.fields) end
        end
    end
end

return M
