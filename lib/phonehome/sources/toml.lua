-- A strict TOML 1.0 parser for product config files (MongooseIM's mongooseim.toml): Debian
-- packages none for Lua or C. Offset and local date-times come back as their text strings.
local M = {}

local MAX_SIZE = 4 * 1024 * 1024
local MAX_DEPTH = 64

local byte, sub, find, match = string.byte, string.sub, string.find, string.match

local B_NL, B_CR, B_TAB = 10, 13, 9
local B_HASH, B_EQ, B_DOT, B_COMMA = 35, 61, 46, 44
local B_QUOTE, B_APOS, B_BSL = 34, 39, 92
local B_LBRACK, B_RBRACK, B_LBRACE, B_RBRACE = 91, 93, 123, 125

local escapes = {
    b = "\b", t = "\t", n = "\n", f = "\f", r = "\r", ['"'] = '"', ["\\"] = "\\",
}

-- A parse: the text, a cursor, and what each table or array is, for the redefinition rules.
-- Kinds: "implicit" (a header's prefix), "header", "dotted", "inline" (frozen),
-- "aot" (an array of tables), "array" (a static array, frozen).
local function new_state(text)
    return { text = text, pos = 1, n = #text, kind = setmetatable({}, { __mode = "k" }) }
end

local function line_of(text, pos)
    local _, lines = sub(text, 1, pos - 1):gsub("\n", "")
    return lines + 1
end

local function fail(st, msg, pos)
    error({ toml = ("line %d: %s"):format(line_of(st.text, pos or st.pos), msg) }, 0)
end

local function show(st)
    local c = sub(st.text, st.pos, st.pos)
    if c == "" then return "end of input" end
    if c == "\n" or c == "\r" then return "end of line" end
    if byte(c) < 32 or byte(c) == 127 then return ("control character %d"):format(byte(c)) end
    return ("'%s'"):format(c)
end

local function skip_ws(st)
    st.pos = find(st.text, "[^ \t]", st.pos) or st.n + 1
end

-- A comment may hold any character but controls other than tab.
local function skip_comment(st)
    if byte(st.text, st.pos) ~= B_HASH then return end
    local stop = find(st.text, "[\r\n]", st.pos) or st.n + 1
    local bad = find(st.text, "[%z\1-\8\10-\31\127]", st.pos)
    if bad and bad < stop then
        st.pos = bad
        fail(st, "control character in a comment")
    end
    st.pos = stop
end

-- Consumes one newline (LF or CRLF) and says whether there was one.
local function newline(st)
    local c = byte(st.text, st.pos)
    if c == B_NL then
        st.pos = st.pos + 1
        return true
    elseif c == B_CR then
        if byte(st.text, st.pos + 1) ~= B_NL then fail(st, "carriage return without newline") end
        st.pos = st.pos + 2
        return true
    end
    return false
end

local function end_of_line(st, what)
    skip_ws(st)
    skip_comment(st)
    if st.pos <= st.n and not newline(st) then
        fail(st, ("unexpected %s after %s"):format(show(st), what))
    end
end

-- Whitespace, comments and newlines, as allowed between array elements.
local function skip_blank(st)
    repeat
        skip_ws(st)
        skip_comment(st)
    until not newline(st)
end

local function check_char(st, c, multiline)
    if (c < 32 and c ~= B_TAB and not (multiline and c == B_NL)) or c == 127 then
        if c == B_NL or c == B_CR then fail(st, "newline in a single-line string") end
        fail(st, ("control character %d in a string"):format(c))
    end
end

local function unicode_escape(st, digits)
    local hex = match(st.text, "^" .. ("%x"):rep(digits), st.pos)
    if not hex then fail(st, ("\\%s needs %d hex digits"):format(
        digits == 4 and "u" or "U", digits)) end
    local cp = tonumber(hex, 16)
    if cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then
        fail(st, "escape " .. hex .. " is not a Unicode scalar value")
    end
    st.pos = st.pos + digits
    return utf8.char(cp)
end

-- Reads a string whose opening delimiter starts at st.pos; basic strings take escapes.
local function read_string(st, allow_multiline)
    local text, q, open = st.text, byte(st.text, st.pos), st.pos
    local basic = q == B_QUOTE
    local multi = byte(text, st.pos + 1) == q and byte(text, st.pos + 2) == q
    if multi and not allow_multiline then fail(st, "a key cannot be a multi-line string") end
    st.pos = st.pos + (multi and 3 or 1)
    if multi then newline(st) end -- a newline right after the opening is trimmed
    local parts = {}
    while true do
        local c = byte(text, st.pos)
        if not c then fail(st, "unterminated string", open) end
        if c == q then
            if not multi then
                st.pos = st.pos + 1
                return table.concat(parts)
            end
            local run = #match(text, "^" .. (basic and '"*' or "'*"), st.pos)
            if run >= 3 then
                if run > 5 then fail(st, "too many quotes closing a multi-line string") end
                parts[#parts + 1] = sub(text, st.pos, st.pos + run - 4)
                st.pos = st.pos + run
                return table.concat(parts)
            end
            parts[#parts + 1] = sub(text, st.pos, st.pos + run - 1)
            st.pos = st.pos + run
        elseif basic and c == B_BSL then
            local e = sub(text, st.pos + 1, st.pos + 1)
            st.pos = st.pos + 2
            if escapes[e] then
                parts[#parts + 1] = escapes[e]
            elseif e == "u" or e == "U" then
                parts[#parts + 1] = unicode_escape(st, e == "u" and 4 or 8)
            elseif multi and match(text, "^[ \t]*\r?\n", st.pos - 1) then
                -- a line-ending backslash drops the newline and the blanks that follow
                local from = st.pos - 1
                st.pos = find(text, "[^ \t\r\n]", from) or st.n + 1
                local skipped = sub(text, from, st.pos - 1)
                if find(skipped, "\r[^\n]") or sub(skipped, -1) == "\r" then
                    fail(st, "carriage return without newline", from)
                end
            else
                st.pos = st.pos - 2
                fail(st, ("invalid escape '\\%s'"):format(e))
            end
        elseif multi and c == B_CR then
            if byte(text, st.pos + 1) ~= B_NL then fail(st, "carriage return without newline") end
            parts[#parts + 1] = "\r\n"
            st.pos = st.pos + 2
        else
            check_char(st, c, multi)
            local stop = find(text, basic and '[%z\1-\31"\\\127]' or "[%z\1-\31'\127]", st.pos)
            stop = stop or st.n + 1
            if stop == st.pos then stop = stop + 1 end
            parts[#parts + 1] = sub(text, st.pos, stop - 1)
            st.pos = stop
        end
    end
end

local function read_key(st)
    skip_ws(st)
    local keys, start = {}, st.pos
    repeat
        skip_ws(st)
        local c = byte(st.text, st.pos)
        if c == B_QUOTE or c == B_APOS then
            keys[#keys + 1] = read_string(st, false)
        else
            local bare = match(st.text, "^[%w_-]+", st.pos)
            if not bare then fail(st, ("expected a key, found %s"):format(show(st))) end
            keys[#keys + 1] = bare
            st.pos = st.pos + #bare
        end
        if #keys > MAX_DEPTH then fail(st, "key nested too deeply", start) end
        skip_ws(st)
        local dot = byte(st.text, st.pos) == B_DOT
        if dot then st.pos = st.pos + 1 end
    until not dot
    return keys, start
end

local INT64_MAX = "9223372036854775807"

local function decimal_integer(st, tok, start)
    local sign, digits = match(tok, "^([+-]?)(%d+)$")
    if #digits > 1 and byte(digits) == 48 then fail(st, "leading zero in " .. tok, start) end
    local limit = sign == "-" and "9223372036854775808" or INT64_MAX
    if #digits > #limit or (#digits == #limit and digits > limit) then
        fail(st, "integer out of range: " .. tok, start)
    end
    return math.tointeger(tonumber(sign .. digits))
end

local bases = { x = { 16, "%x" }, o = { 8, "[0-7]" }, b = { 2, "[01]" } }

local function prefixed_integer(st, tok, start)
    local base = bases[sub(tok, 2, 2)]
    local rest = sub(tok, 3)
    local digits = rest:gsub("_", "")
    if not match(rest, "^[%w_]+$") or byte(rest) == 95 or sub(rest, -1) == "_"
        or find(rest, "__", 1, true) or not match(digits, "^" .. base[2] .. "+$") then
        fail(st, "invalid integer " .. tok, start)
    end
    local v = 0
    for i = 1, #digits do
        local d = tonumber(sub(digits, i, i), base[1])
        if v > (math.maxinteger - d) // base[1] then
            fail(st, "integer out of range: " .. tok, start)
        end
        v = v * base[1] + d
    end
    return v
end

local function digits_ok(s)
    return s and match(s, "^%d[%d_]*$") and not find(s, "__", 1, true) and sub(s, -1) ~= "_"
end

local function number(st, tok, start)
    if tok == "true" then return true end
    if tok == "false" then return false end
    local sign, rest = match(tok, "^([+-]?)(.*)$")
    if rest == "inf" then return sign == "-" and -math.huge or math.huge end
    if rest == "nan" then return 0 / 0 end
    if match(tok, "^0[xob]") then return prefixed_integer(st, tok, start) end
    local int, frac, exp = match(rest, "^([%d_]+)(%.?[%d_]*)([eE]?[+-]?[%d_]*)$")
    local bad = not digits_ok(int)
        or (frac ~= "" and not digits_ok(sub(frac, 2)))
        or (exp ~= "" and not digits_ok(match(exp, "^[eE][+-]?(.*)$")))
    if bad then fail(st, ("invalid value '%s'"):format(tok), start) end
    if #int > 1 and byte(int) == 48 then fail(st, "leading zero in " .. tok, start) end
    if frac == "" and exp == "" then
        return decimal_integer(st, sign .. int:gsub("_", ""), start)
    end
    local f = tonumber((tok:gsub("_", "")))
    if not f or f == math.huge or f == -math.huge then
        fail(st, "float out of range: " .. tok, start)
    end
    return f + 0.0
end

local function valid_time(h, mi, s)
    return tonumber(h) < 24 and tonumber(mi) < 60 and tonumber(s) <= 60
end

-- Dates and times stay text: nothing in the products' configs needs them as numbers.
local function datetime(st)
    local text, start = st.text, st.pos
    local y, mo, d = match(text, "^(%d%d%d%d)%-(%d%d)%-(%d%d)", start)
    local stop
    if y then
        if tonumber(mo) < 1 or tonumber(mo) > 12 or tonumber(d) < 1 or tonumber(d) > 31 then
            fail(st, "invalid date")
        end
        stop = start + 10
        local h, mi, s = match(text, "^[Tt ](%d%d):(%d%d):(%d%d)", stop)
        if h then
            if not valid_time(h, mi, s) then fail(st, "invalid time") end
            stop = stop + 9
            local fr = match(text, "^%.%d+", stop)
            if fr then stop = stop + #fr end
            local off = match(text, "^[Zz]", stop) or match(text, "^[+-]%d%d:%d%d", stop)
            if off then
                if #off > 1 and (tonumber(sub(off, 2, 3)) > 23 or tonumber(sub(off, 5)) > 59) then
                    fail(st, "invalid time offset")
                end
                stop = stop + #off
            end
        elseif match(text, "^[Tt]", stop) then
            fail(st, "invalid time")
        end
    else
        local h, mi, s = match(text, "^(%d%d):(%d%d):(%d%d)", start)
        if not h then
            if match(text, "^%d%d:", start) then fail(st, "invalid time") end
            return nil
        end
        if not valid_time(h, mi, s) then fail(st, "invalid time") end
        stop = start + 8
        local fr = match(text, "^%.%d+", stop)
        if fr then stop = stop + #fr end
    end
    st.pos = stop
    return sub(text, start, stop - 1)
end

local parse_value

local function freeze(st, t)
    st.kind[t] = st.kind[t] == "array" and "array" or "inline"
    for _, v in pairs(t) do
        if type(v) == "table" and st.kind[v] ~= "inline" then freeze(st, v) end
    end
end

-- Sets keys (a dotted path) to a value in t, creating the dotted tables between.
local function assign(st, t, keys, start, value)
    for i = 1, #keys - 1 do
        local k = keys[i]
        local v = t[k]
        if v == nil then
            v = {}
            st.kind[v] = "dotted"
            t[k] = v
        elseif type(v) ~= "table" or st.kind[v] ~= "dotted" then
            fail(st, ("key '%s' is already defined"):format(k), start)
        end
        t = v
    end
    local k = keys[#keys]
    if t[k] ~= nil then fail(st, ("key '%s' is already defined"):format(k), start) end
    t[k] = value
end

local function key_value(st, t, depth)
    local keys, start = read_key(st)
    depth = depth + #keys
    if depth > MAX_DEPTH then fail(st, "key nested too deeply", start) end
    if byte(st.text, st.pos) ~= B_EQ then
        fail(st, ("expected '=' after a key, found %s"):format(show(st)))
    end
    st.pos = st.pos + 1
    skip_ws(st)
    assign(st, t, keys, start, parse_value(st, depth - 1))
end

local function parse_array(st, depth)
    local a = {}
    st.kind[a] = "array"
    st.pos = st.pos + 1
    while true do
        skip_blank(st)
        if byte(st.text, st.pos) == B_RBRACK then break end
        a[#a + 1] = parse_value(st, depth)
        skip_blank(st)
        local c = byte(st.text, st.pos)
        if c == B_RBRACK then break end
        if c ~= B_COMMA then
            fail(st, ("expected ',' or ']' in an array, found %s"):format(show(st)))
        end
        st.pos = st.pos + 1
    end
    st.pos = st.pos + 1
    return a
end

local function parse_inline_table(st, depth)
    local t = {}
    st.kind[t] = "inline"
    st.pos = st.pos + 1
    skip_ws(st)
    if byte(st.text, st.pos) == B_RBRACE then
        st.pos = st.pos + 1
        return t
    end
    while true do
        key_value(st, t, depth)
        skip_ws(st)
        local c = byte(st.text, st.pos)
        if c == B_RBRACE then break end
        if c ~= B_COMMA then
            fail(st, ("expected ',' or '}' in an inline table, found %s"):format(show(st)))
        end
        st.pos = st.pos + 1
        skip_ws(st)
        if byte(st.text, st.pos) == B_RBRACE then fail(st, "trailing comma in an inline table") end
    end
    st.pos = st.pos + 1
    freeze(st, t)
    return t
end

function parse_value(st, depth)
    if depth >= MAX_DEPTH then fail(st, "values nested too deeply") end
    local c = byte(st.text, st.pos)
    if c == B_QUOTE or c == B_APOS then return read_string(st, true) end
    if c == B_LBRACK then return parse_array(st, depth + 1) end
    if c == B_LBRACE then return parse_inline_table(st, depth + 1) end
    local dt = datetime(st)
    if dt then return dt end
    local start = st.pos
    local tok = match(st.text, "^[%w%.%+%-_]+", start)
    if not tok then fail(st, ("expected a value, found %s"):format(show(st))) end
    st.pos = start + #tok
    return number(st, tok, start)
end

-- Walks a header's prefix: tables are entered, arrays of tables by their last element.
local function descend(st, t, k, start)
    local v = t[k]
    if v == nil then
        v = {}
        st.kind[v] = "implicit"
        t[k] = v
        return v
    end
    local kind = type(v) == "table" and st.kind[v]
    if kind == "aot" then return v[#v] end
    if kind == "implicit" or kind == "header" or kind == "dotted" then return v end
    fail(st, ("key '%s' is already defined and is not a table"):format(k), start)
end

local function header(st, root)
    local aot = byte(st.text, st.pos + 1) == B_LBRACK
    local start = st.pos
    st.pos = st.pos + (aot and 2 or 1)
    local keys = read_key(st)
    local close = aot and "]]" or "]"
    if sub(st.text, st.pos, st.pos + #close - 1) ~= close then
        fail(st, ("expected '%s' closing a table header, found %s"):format(close, show(st)))
    end
    st.pos = st.pos + #close
    local t = root
    for i = 1, #keys - 1 do t = descend(st, t, keys[i], start) end
    local k, v = keys[#keys], t[keys[#keys]]
    local kind = type(v) == "table" and st.kind[v]
    if aot then
        if v == nil then
            v = {}
            st.kind[v] = "aot"
            t[k] = v
        elseif kind ~= "aot" then
            fail(st, ("key '%s' is already defined and is not an array of tables"):format(k), start)
        end
        local e = {}
        st.kind[e] = "header"
        v[#v + 1] = e
        return e, #keys
    end
    if v == nil then
        v = {}
        t[k] = v
    elseif kind ~= "implicit" then
        fail(st, ("table '%s' is already defined"):format(table.concat(keys, ".")), start)
    end
    st.kind[v] = "header"
    return v, #keys
end

local function parse_document(st)
    local root = {}
    local current, depth = root, 0
    st.kind[root] = "header"
    while st.pos <= st.n do
        skip_ws(st)
        skip_comment(st)
        if st.pos > st.n then break end
        if not newline(st) then
            if byte(st.text, st.pos) == B_LBRACK then
                current, depth = header(st, root)
                end_of_line(st, "a table header")
            else
                key_value(st, current, depth)
                end_of_line(st, "a value")
            end
        end
    end
    return root
end

-- Returns the document as nested tables, or nil and "line N: what is wrong".
function M.parse(text)
    if type(text) ~= "string" then return nil, "line 1: TOML text must be a string" end
    if #text > MAX_SIZE then return nil, ("line 1: input over %d bytes"):format(MAX_SIZE) end
    local ok, bad = utf8.len(text)
    if not ok then return nil, ("line %d: invalid UTF-8"):format(line_of(text, bad)) end
    local done, result = pcall(parse_document, new_state(text))
    if done then return result end
    if type(result) == "table" and result.toml then return nil, result.toml end
    error(result, 0)
end

return M
