-- Logs: one logfmt line per event on stderr, level and product first.
local M = {}

M.out = io.stderr

local function quote(v)
    v = tostring(v)
    if v == "" or v:find('[%s"=\\]') or v:find("%c") then
        return '"' .. v:gsub('[\\"]', "\\%0"):gsub("\n", "\\n"):gsub("%c", function(c)
            return string.format("\\x%02x", c:byte())
        end) .. '"'
    end
    return v
end

local first = { "level", "product", "msg" }
local is_first = { level = true, product = true, msg = true }

-- line(level, fields) -> the logfmt text, without the newline.
function M.format(level, fields)
    local parts = { "level=" .. level }
    for i = 2, #first do
        local k = first[i]
        if fields[k] ~= nil then parts[#parts + 1] = k .. "=" .. quote(fields[k]) end
    end
    local keys = {}
    for k in pairs(fields) do
        if not is_first[k] then keys[#keys + 1] = k end
    end
    table.sort(keys)
    for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. quote(fields[k]) end
    return table.concat(parts, " ")
end

for _, level in ipairs({ "debug", "info", "warn", "error" }) do
    M[level] = function(fields)
        M.out:write(M.format(level, fields), "\n")
        M.out:flush()
    end
end

return M
