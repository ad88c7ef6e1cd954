-- Strict parser of the Prometheus text exposition format 0.0.4, as client_golang writes it
-- and as expfmt.TextParser reads it; a scrape answers value, sum and series queries by name.
local M = {}

M.MAX_BYTES = 16 * 1024 * 1024
M.MAX_SAMPLES = 1000000
-- lines between calls of parse's pause: a few milliseconds of work
M.PAUSE_LINES = 1000

local TYPES = { counter = true, gauge = true, histogram = true, summary = true, untyped = true }
-- a histogram or summary family owns series under these suffixes
local SUFFIXES = { histogram = { "_bucket", "_sum", "_count" }, summary = { "_sum", "_count" } }
local UNESCAPE = { ["\\"] = "\\", ['"'] = '"', n = "\n" }

local METRIC = "^[A-Za-z_:][A-Za-z0-9_:]*"
local LABEL = "^[A-Za-z_][A-Za-z0-9_]*"

-- A value as Go's strconv.ParseFloat reads it: decimal or hexadecimal with exponent, Inf,
-- Infinity and NaN in any case; a finite literal too large for a double is out of range.
local function float(s)
    if s:find("^[+-]?%d*%.?%d*$") or s:find("^[+-]?%d*%.?%d*[eE][+-]?%d+$")
            or s:find("^[+-]?0[xX]%x*%.?%x*[pP][+-]?%d+$") then
        local v = tonumber(s)  -- nil when the mantissa has no digit
        if not v then return nil, "bad value \"" .. s .. "\"" end
        v = v + 0.0
        if v == math.huge or v == -math.huge then
            return nil, "value " .. s .. " is out of range"
        end
        return v
    end
    local l = s:lower()
    local sign, rest = l:match("^([+-]?)(.*)$")
    if rest == "inf" or rest == "infinity" then
        return sign == "-" and -math.huge or math.huge
    end
    if l == "nan" then return 0.0 / 0.0 end
    return nil, "bad value \"" .. s .. "\""
end

-- Labels from the '{' at position p: returns labels, a list of their names and the position
-- after '}', or nil and a message.
local function labelset(line, p)
    local labels, names = {}, {}
    p = p + 1
    while true do
        -- the common case, as client_golang writes it: name="plain value" then , or }
        local fname, fvalue, fend = line:match('^([A-Za-z_][A-Za-z0-9_]*)="([^"\\]*)"([,}])', p)
        if fname and fname ~= "__name__" and not labels[fname] and utf8.len(fvalue) then
            labels[fname] = fvalue
            names[#names + 1] = fname
            p = p + #fname + #fvalue + 4
            if fend == "}" then return labels, names, p end
            goto continue
        end
        p = line:find("[^ \t]", p) or #line + 1
        if line:sub(p, p) == "}" then return labels, names, p + 1 end
        local name = line:match(LABEL, p)
        if not name then return nil, "bad label name at column " .. p end
        if name == "__name__" then return nil, "label name __name__ is reserved" end
        if labels[name] then return nil, "duplicate label " .. name end
        p = line:find("[^ \t]", p + #name) or #line + 1
        if line:sub(p, p) ~= "=" then return nil, "expected = after label " .. name end
        p = line:find("[^ \t]", p + 1) or #line + 1
        if line:sub(p, p) ~= '"' then return nil, "expected \" to open the value of " .. name end
        local parts, q = {}, p + 1
        while true do
            local e = line:find('["\\]', q)
            if not e then return nil, "unterminated value of label " .. name end
            parts[#parts + 1] = line:sub(q, e - 1)
            if line:sub(e, e) == '"' then q = e + 1; break end
            local c = UNESCAPE[line:sub(e + 1, e + 1)]
            if not c then
                return nil, "bad escape \\" .. line:sub(e + 1, e + 1) .. " in label " .. name
            end
            parts[#parts + 1] = c
            q = e + 2
        end
        local value = table.concat(parts)
        if not utf8.len(value) then return nil, "label " .. name .. " is not valid UTF-8" end
        labels[name] = value
        names[#names + 1] = name
        p = line:find("[^ \t]", q) or #line + 1
        local c = line:sub(p, p)
        if c == "," then
            p = p + 1
        elseif c ~= "}" then
            return nil, "expected , or } after the value of label " .. name
        end
        ::continue::
    end
end

-- A series' identity: its name and its labels in name order, NUL-separated; no parsed name
-- or value holds a NUL, so none can forge another set.
local function key(name, labels, names)
    if not names then
        names = {}
        for k, v in pairs(labels) do
            if type(k) ~= "string" or type(v) ~= "string" then
                error("labels must map names to string values", 3)
            end
            if v:find("\0", 1, true) then return nil end
            names[#names + 1] = k
        end
    end
    if #names > 1 then table.sort(names) end
    local parts, n = { name }, 1
    for i = 1, #names do
        local k = names[i]
        parts[n + 1], parts[n + 2] = k, labels[k]
        n = n + 2
    end
    return table.concat(parts, "\0")
end

-- a scrape's parsed state, out of reach of the scripts that hold the scrape: one field
-- function cannot change what another reads
local private = setmetatable({}, { __mode = "k" })
local Scrape = {}
local meta = { __index = Scrape, __metatable = "prometheus scrape", __newindex = function()
    error("a prometheus scrape is read-only", 2)
end }

-- the value of the one series with exactly these labels (nil or {} for none), or nil
function Scrape:value(name, labels)
    local k = key(name, labels or {})
    local s = k and private[self].index[k]
    return s and s.value
end

-- the sum over the series of name whose labels include every pair of match, or nil if none do
function Scrape:sum(name, match)
    local total
    for _, s in ipairs(private[self].series[name] or {}) do
        local ok = true
        for k, v in pairs(match or {}) do
            if s.labels[k] ~= v then ok = false; break end
        end
        if ok then total = (total or 0.0) + s.value end
    end
    return total
end

-- copies, in exposition order, for the same reason
function Scrape:series(name)
    local out = {}
    for i, s in ipairs(private[self].series[name] or {}) do
        local labels = {}
        for k, v in pairs(s.labels) do labels[k] = v end
        out[i] = { labels = labels, value = s.value, timestamp = s.timestamp }
    end
    return out
end

-- the type ("untyped" unless declared) and help text of a family, or nil if there is none of
-- that name (h_bucket is a series of family h, not a family)
function Scrape:family(name)
    local st = private[self]
    local f = st.families[name]
    if f or st.owned[name] then return f and f.type or "untyped", f and f.help end
    return nil
end

local function comment(st, line)
    local word, p = line:match("^#[ \t]*(%S*)()")
    if word ~= "HELP" and word ~= "TYPE" then return true end
    p = line:find("[^ \t]", p)
    local name = p and line:match(METRIC, p)
    if not name then return nil, "bad metric name in " .. word end
    local rest = line:sub(p + #name)
    if rest ~= "" and not rest:find("^[ \t]") then return nil, "bad metric name in " .. word end
    rest = rest:gsub("^[ \t]+", "")
    local f = st.families[name] or {}
    st.families[name] = f
    if word == "HELP" then
        if f.help then return nil, "second HELP for " .. name end
        for c in rest:gmatch("\\(.?)") do
            if c ~= "\\" and c ~= "n" then return nil, "bad escape in HELP for " .. name end
        end
        f.help = rest:gsub("[ \t]+$", ""):gsub("\\(.)", { ["\\"] = "\\", n = "\n" })
        return true
    end
    if f.type then return nil, "second TYPE for " .. name end
    local t = rest:match("^(%S+)[ \t]*$")
    if not TYPES[t] then return nil, "bad TYPE for " .. name .. ": \"" .. rest .. "\"" end
    local owned = st.series[name] and name
    for _, suffix in ipairs(SUFFIXES[t] or {}) do
        owned = owned or st.series[name .. suffix] and name .. suffix
    end
    if owned then return nil, "TYPE for " .. name .. " after samples of " .. owned end
    f.type = t
    return true
end

-- the family a sample belongs to, once the reserved labels of histograms and summaries are
-- checked to be there and numeric
local function family(st, name, labels)
    local f = st.families[name]
    if f and f.type == "histogram" then return nil, "histogram " .. name .. " needs a suffix" end
    if f and f.type == "summary" then
        if not labels.quantile then return nil, "summary " .. name .. " needs a quantile" end
        if not float(labels.quantile) then return nil, "bad quantile in " .. name end
        return name
    end
    if f then return name end
    local base, suffix = name:match("^(.*)(_[a-z]+)$")
    f = base and st.families[base]
    local t = f and f.type
    if suffix == "_bucket" and t == "histogram" then
        if not labels.le then return nil, "bucket " .. name .. " needs an le label" end
        if not float(labels.le) then return nil, "bad le in " .. name end
        return base
    end
    if (suffix == "_sum" or suffix == "_count") and (t == "histogram" or t == "summary") then
        return base
    end
    return name
end

local function sample(st, line)
    local p = line:find("[^ \t]")
    local name = line:match(METRIC, p)
    if not name then return nil, "bad metric name" end
    local q = p + #name
    p = line:find("[^ \t]", q) or #line + 1
    local labels, names = {}, {}
    if line:sub(p, p) == "{" then
        labels, names, p = labelset(line, p)
        if not labels then return nil, names end
    elseif p == q and p <= #line then
        return nil, "unexpected \"" .. line:sub(p, p) .. "\" after " .. name
    end
    local owner, err = family(st, name, labels)
    if not owner then return nil, err end
    local vs, ts, tail = line:match("^[ \t]*(%S+)[ \t]*(%S*)[ \t]*(.*)$", p)
    if not vs then return nil, "expected a value after " .. name end
    if tail ~= "" then return nil, "unexpected \"" .. tail .. "\" after the timestamp" end
    local value, verr = float(vs)
    if not value then return nil, verr end
    local timestamp
    if ts ~= "" then
        timestamp = ts:find("^[+-]?%d+$") and tonumber(ts)
        if math.type(timestamp) ~= "integer" then return nil, "bad timestamp \"" .. ts .. "\"" end
    end
    local k = key(name, labels, names)
    if st.index[k] then return nil, "duplicate series " .. name end
    st.count = st.count + 1
    if st.count > M.MAX_SAMPLES then return nil, "more than " .. M.MAX_SAMPLES .. " samples" end
    local s = { labels = labels, value = value, timestamp = timestamp }
    st.index[k] = s
    local list = st.series[name]
    if not list then list = {}; st.series[name] = list end
    list[#list + 1] = s
    st.owned[owner] = true
    return true
end

-- parse(text [, pause]) -> scrape, or nil and "line N: what is wrong". pause, if given, is
-- called every PAUSE_LINES lines (coroutine.yield, say) so a big scrape need not hold the loop.
function M.parse(text, pause)
    if type(text) ~= "string" then return nil, "metrics must be a string, got " .. type(text) end
    if #text > M.MAX_BYTES then
        return nil, "metrics are " .. #text .. " bytes, over the " .. M.MAX_BYTES .. " limit"
    end
    local st = { families = {}, series = {}, index = {}, owned = {}, count = 0 }
    local pos, n = 1, 0
    local control = text:find("[\r%z]") or #text + 2
    while pos <= #text do
        local e = text:find("\n", pos, true) or #text + 1
        local line = text:sub(pos, e - 1)
        n = n + 1
        pos = e + 1
        if pause and n % M.PAUSE_LINES == 0 then pause() end
        local ok, err = true, nil
        if e > control then
            ok, err = nil, "carriage return or NUL byte"
        elseif line:find("^[ \t]*#") then
            ok, err = comment(st, (line:gsub("^[ \t]+", "")))
        elseif line:find("[^ \t]") then
            ok, err = sample(st, line)
        end
        if not ok then return nil, "line " .. n .. ": " .. err end
    end
    local scrape = setmetatable({}, meta)
    private[scrape] = st
    return scrape
end

return M
