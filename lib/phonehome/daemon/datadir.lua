-- The data directory and everything kept in it; no other module knows its layout:
--   reports.db                        the collector's default database
--   PRODUCT/                          everything of one product, and nothing else:
--     state.json                      its schedule state, 0644
--     instance.id (or identity.file)  its instance id, 0644
--     last.json (or last_report)      the last report built, 0644
--     spool/SEQUENCE-KEY.json         reports waiting to be sent, 0600
--     state.json.bad-TIME, spool/*.bad-TIME   files that could not be used, set aside
-- The names a script gives its files are plain names inside its own directory, so no
-- product reaches another's files or the collector's database. Every file is written
-- atomically (temporary file, fsync, rename). Files of the old layout (PRODUCT.state.json,
-- PRODUCT.id, PRODUCT.last.json, spool/PRODUCT/, and the script's names at the top) are
-- read where they are by status and moved into the product's directory by migrate().
local core = require("phonehome.core")
local json = require("phonehome.json")
local log = require("phonehome.base.log")

local M = {}

local PUBLIC = 420    -- 0644: what an operator may read
local PRIVATE = 384   -- 0600: report bodies waiting to be sent

local STATE, SPOOL = "state.json", "spool"
M.ID_FILE, M.LAST_FILE = "instance.id", "last.json"   -- when the script names none

-- The default: $STATE_DIRECTORY (systemd), /var/lib/phonehome for root, else
-- $XDG_STATE_HOME/phonehome (~/.local/state/phonehome).
function M.default()
    local sd = core.getenv("STATE_DIRECTORY")
    if sd and sd ~= "" then return (sd:match("^[^:]+")) end
    if core.is_root() then return "/var/lib/phonehome" end
    local xdg = core.getenv("XDG_STATE_HOME")
    if not xdg or xdg == "" then xdg = (core.getenv("HOME") or ".") .. "/.local/state" end
    return xdg .. "/phonehome"
end

-- Whether the directory can be made and written: true, or nil, message.
function M.writable(dir)
    local ok, err = core.mkdir(dir)
    if not ok then return nil, err end
    local probe = dir .. "/.phonehome-write-test"
    ok, err = core.write_atomic(probe, "", PRIVATE)
    if not ok then return nil, err end
    core.remove(probe)
    return true
end

local function own_dir(dir, name)
    return dir .. "/" .. name
end

local function id_name(def)
    return def.identity and def.identity.file or M.ID_FILE
end

local function last_name(def)
    return def.last_report or M.LAST_FILE
end

-- problems(def) -> { "key: message" }: the file names a script gives that would be one
-- of the host's own files in the product's directory, or the same file twice. (That
-- they are plain names, which keeps them inside it, the definition checks.)
function M.problems(def)
    local out = {}
    local function own(key, name)
        if name == nil then return end
        local what
        if name == SPOOL or name == STATE or name:sub(1, #STATE + 1) == STATE .. "." then
            what = "is a name phonehome keeps for itself in the product's directory"
        elseif name:match("%.tmp%d*$") then
            what = "ends like the temporary files phonehome writes (.tmpN)"
        end
        if what then out[#out + 1] = string.format("%s %q %s", key, name, what) end
    end
    own("identity.file", def.identity and def.identity.file)
    own("last_report", def.last_report)
    if id_name(def) == last_name(def) then
        out[#out + 1] = def.last_report
            and string.format("last_report %q is the instance id's file too", def.last_report)
            or string.format("identity.file %q is the last report's file too", id_name(def))
    end
    return out
end

-- The old layout's place of a file a script named: at the top of the data directory,
-- unless that name was one of the host's there (the collector's database, the spool,
-- another product's files), which a product's file never replaces.
local function old_named(dir, name, own)
    if name == nil or name == own then return dir .. "/" .. own end
    if name == SPOOL or name:match("^reports%.db") or name:match("%.state%.json$")
        or name:match("%.last%.json$") or name:match("%.id$") then
        return nil
    end
    return dir .. "/" .. name
end

-- The product's files by kind: { new = path, old = path in the old layout or nil }.
local function places(dir, def)
    local name, pdir = def.name, own_dir(dir, def.name)
    return {
        state = { new = pdir .. "/" .. STATE, old = dir .. "/" .. name .. ".state.json" },
        id = { new = pdir .. "/" .. id_name(def),
               old = old_named(dir, def.identity and def.identity.file, name .. ".id") },
        last = { new = pdir .. "/" .. last_name(def),
                 old = old_named(dir, def.last_report, name .. ".last.json") },
        spool = { new = pdir .. "/" .. SPOOL, old = dir .. "/" .. SPOOL .. "/" .. name },
    }
end

-- Whether a file of the old layout waits to be moved to its new place.
local function left_behind(place)
    return place.old ~= nil and not core.exists(place.new) and core.exists(place.old)
        and not core.isdir(place.old)
end

-- Where a file is now: the new place, else the old layout's (read without moving).
local function current(place)
    return left_behind(place) and place.old or place.new
end

local function move(product, from, to)
    local ok, err = core.rename(from, to)
    if ok then
        log.info({ product = product, msg = "moved to the product's directory", from = from,
                   to = to })
    else
        log.warn({ product = product, msg = "cannot move a file to the product's directory",
                   from = from, error = err })
    end
end

-- migrate(dir, def): moves what the old layout kept for this product into its directory,
-- where nothing of that kind is yet. Run before the daemon or show uses the files; a
-- second run finds nothing to move.
function M.migrate(dir, def)
    local p = places(dir, def)
    for _, kind in ipairs({ "state", "id", "last" }) do
        if left_behind(p[kind]) and core.mkdir(own_dir(dir, def.name)) then
            move(def.name, p[kind].old, p[kind].new)
        end
    end
    local files = core.listdir(p.spool.old)
    if files and #files > 0 and core.mkdir(p.spool.new) then
        for _, f in ipairs(files) do
            if not core.exists(p.spool.new .. "/" .. f) then
                move(def.name, p.spool.old .. "/" .. f, p.spool.new .. "/" .. f)
            end
        end
    end
    if files then core.remove(p.spool.old) end   -- the old directory, once empty
end

-- Renames a file that could not be used to FILE.bad-TIME beside it, for the operator
-- to look at: the new name, or nil, message.
function M.set_aside(file)
    local base = file .. ".bad-" .. os.date("!%Y%m%dT%H%M%SZ")
    local to, n = base, 1
    while core.exists(to) do
        n = n + 1
        to = base .. "-" .. n
    end
    local ok, err = core.rename(file, to)
    if not ok then return nil, err end
    return to
end

-- An instance id as kept: a UUID, with the space around it (a newline written by echo,
-- an editor's) ignored; or nil.
local function uuid_of(text)
    local id = text and text:match("^%s*(.-)%s*$")
    return id and core.uuid_valid(id) and id or nil
end

-- The instance id already kept for a product, without making one or moving it (status).
function M.existing_instance_id(dir, def)
    return uuid_of(core.readfile(current(places(dir, def).id)))
end

-- The instance id of a product: read from its file, created on first use and replaced,
-- with a warning, if it does not hold a UUID. When the directory cannot be written the
-- id is a fresh one for this run only.
function M.instance_id(dir, def)
    local file = places(dir, def).id.new
    local text = core.readfile(file)
    if text then
        local id = uuid_of(text)
        if id then return id end
        log.warn({ product = def.name, msg = "instance id file does not hold a UUID; replacing it",
                   file = file })
    end
    local id = core.uuid()
    local ok, err = core.mkdir(own_dir(dir, def.name))
    if ok then ok, err = core.write_atomic(file, id, PUBLIC) end
    if not ok then
        log.warn({ product = def.name, msg = "cannot keep the instance id; using one for this "
            .. "run only", error = err })
    end
    return id
end

-- The schedule state's fields, each with the check of its value.
local MAX_TIME = 1e12   -- epoch seconds: about the year 33,600, far past any due time

local function time(v)
    return type(v) == "number" and v >= 0 and v <= MAX_TIME
end

local function count(v)
    return math.type(v) == "integer" and v >= 0
end

local function cpu(v)
    return type(v) == "number" and v >= 0 and v < math.huge
end

-- A reading of the target process: its pid, start time, CPU seconds and when.
local function reading(v)
    return type(v) == "table" and math.type(v.pid) == "integer" and v.pid > 0
        and time(v.start_time) and time(v.time) and cpu(v.cpu)
end

-- A list of n values that each pass check (n: its length, when given).
local function list_of(v, check, n)
    if type(v) ~= "table" or (n and #v ~= n) then return false end
    local len = 0
    for k in pairs(v) do
        if math.type(k) ~= "integer" or k < 1 then return false end
        len = len + 1
    end
    if len ~= #v then return false end
    for _, x in ipairs(v) do
        if not check(x) then return false end
    end
    return true
end

local function finite(x)
    return type(x) == "number" and x == x and math.abs(x) < math.huge
end

-- A sampler's window (daemon/samplers.lua): times, values, what was dropped, the slot of
-- its last sample, process.cpu's previous reading, the error last said.
local function window(w)
    if type(w) ~= "table" or not list_of(w.t or {}, time) then return false end
    return list_of(w.v or {}, finite, #(w.t or {})) and (w.dropped == nil or count(w.dropped))
        and (w.slot == nil or math.type(w.slot) == "integer")
        and (w.prev == nil or reading(w.prev))
        and (w.error == nil or type(w.error) == "string")
end

-- A table of name -> value, each passing check.
local function map_of(v, check)
    if type(v) ~= "table" then return false end
    for k, x in pairs(v) do
        if type(k) ~= "string" or not check(x) then return false end
    end
    return true
end

-- A metric's aggregate as statsd.so gives it (the rest is checked when it is merged).
local kinds = { counter = true, gauge = true, histogram = true, set = true }
local function aggregate(a)
    return type(a) == "table" and kinds[a.kind] and count(a.lines)
        and (a.value == nil or finite(a.value))
        and (a.kind ~= "histogram" or (list_of(a.values, finite)
            and list_of(a.counts, count, #a.values)))
        and (a.hll == nil or type(a.hll) == "string")
end

-- The metrics' window (daemon/statsd.lua): segments { from, aggs } and the gauges' values.
local function metrics_window(m)
    return type(m) == "table" and map_of(m.gauges or {}, finite)
        and list_of(m.segments, function(seg)
            return type(seg) == "table" and time(seg.from) and map_of(seg.aggs, aggregate)
        end) and #m.segments >= 1
end

local state_fields = {
    last_sent = time, next_due = time, last_built = time,
    last_result = function(v) return type(v) == "string" end,
    reloads = count,
    reload_error = function(v) return type(v) == "string" end,
    process = reading,
    samples = function(v) return map_of(v, window) end,
    -- the build time of each report spooled, by its key: its window ends when delivered
    cuts = function(v) return map_of(v, time) end,
    metrics = metrics_window,
    -- ctx.increase's values at the last report delivered, and those of each spooled
    marks = function(v) return map_of(v, finite) end,
    marks_due = function(v) return map_of(v, function(m) return map_of(m, finite) end) end,
}

-- valid_state(text) -> the state it holds, or nil, reason. Fields of other versions are
-- left out; a field of the wrong type or out of range makes the whole file bad.
function M.valid_state(text)
    local v, err = json.decode(text)
    if v == nil then return nil, "not JSON: " .. tostring(err) end
    if type(v) ~= "table" or not text:match("^%s*{") then
        return nil, "not a JSON object"
    end
    local state = {}
    for k, check in pairs(state_fields) do
        local x = v[k]
        if x ~= nil and x ~= json.null then
            if not check(x) then
                return nil, k .. " is " .. (type(x) == "string" and string.format("%q", x)
                    or type(x) == "table" and "a table" or tostring(x))
            end
            state[k] = x
        end
    end
    return state
end

-- The StatsD listener's counts (daemon/statsd.lua), for status: where it listens, lines
-- counted, malformed, undeclared, datagrams the kernel dropped, since when.
local LISTENER = "statsd.json"

function M.write_listener(dir, counts)
    local ok, err = core.write_atomic(dir .. "/" .. LISTENER, json.encode(counts) .. "\n", PUBLIC)
    if not ok then log.warn({ msg = "cannot save the StatsD counts", error = err }) end
    return ok
end

-- read_listener(dir) -> what write_listener wrote, or nil.
function M.read_listener(dir)
    local text = core.readfile(dir .. "/" .. LISTENER)
    local v = text and json.decode(text)
    return type(v) == "table" and v or nil
end

-- read_state(dir, name) -> the persisted schedule state of a product ({ last_sent,
-- next_due, ... }, or {}); when its file is not valid, also why and the file (status
-- reads it this way, changing nothing).
function M.read_state(dir, name)
    local file = current(places(dir, { name = name }).state)
    local text, why = core.readfile(file)
    if not text then
        -- none yet; or one that cannot be read (too large, not a file): not ours to replace
        if core.exists(file) then return {}, "cannot be read: " .. why, file end
        return {}
    end
    local state, err = M.valid_state(text)
    if not state then return {}, err, file end
    return state
end

-- load_state(dir, name) -> the state the daemon starts from: read_state's, or when the
-- file is not valid, {} and the file set aside with a warning.
function M.load_state(dir, name)
    local state, err, file = M.read_state(dir, name)
    if err then
        local aside, why = M.set_aside(file)
        log.warn({ product = name, msg = "state file is not valid; set aside", file = file,
                   error = err, moved_to = aside, cannot_move = why })
    end
    return state
end

-- Writes it; a failure is logged and the daemon goes on.
function M.write_state(dir, name, state)
    local ok, err = core.mkdir(own_dir(dir, name))
    if ok then
        ok, err = core.write_atomic(places(dir, { name = name }).state.new,
            json.encode(state) .. "\n", PUBLIC)
    end
    if not ok then
        log.warn({ product = name, msg = "cannot save the schedule state", error = err })
    end
    return ok
end

-- The last report built for a product (decoded), or nil.
function M.read_last_report(dir, def)
    local text = core.readfile(places(dir, def).last.new)
    return text and json.decode(text) or nil
end

-- Keeps the last report built, for the operator to read; a failure is logged.
function M.write_last_report(dir, def, body)
    local ok, err = core.mkdir(own_dir(dir, def.name))
    if ok then ok, err = core.write_atomic(places(dir, def).last.new, body .. "\n", PUBLIC) end
    if not ok then
        log.warn({ product = def.name, msg = "cannot write the last report", error = err })
    end
    return ok
end

-- spooled(dir, name) -> the reports spooled for a product, oldest first, each { seq, key,
-- file, body }; and the files that cannot be read (too large, not a file), each { file,
-- error }. Both status and the daemon read it, so status counts what would be sent.
function M.spooled(dir, name)
    local out, bad = {}, {}
    local place = places(dir, { name = name }).spool
    local sdir = core.exists(place.new) and place.new or place.old
    for _, f in ipairs(core.listdir(sdir) or {}) do
        local seq, key = f:match("^(%d+)%-([%w%-]+)%.json$")
        if seq then
            local e = { seq = tonumber(seq), key = key, file = sdir .. "/" .. f }
            local body, err = core.readfile(e.file)
            if body then
                e.body = body
                out[#out + 1] = e
            else
                bad[#bad + 1] = { file = e.file, error = err }
            end
        end
    end
    table.sort(out, function(a, b) return a.seq < b.seq end)
    return out, bad
end

-- Spools a report body: the file it is in, or nil, message.
function M.spool(dir, name, seq, key, body)
    local sdir = places(dir, { name = name }).spool.new
    local ok, err = core.mkdir(sdir)
    local file = string.format("%s/%020d-%s.json", sdir, seq, key)
    if ok then ok, err = core.write_atomic(file, body, PRIVATE) end
    if not ok then return nil, err end
    return file
end

-- The collector's database when --db is not given.
function M.reports_db(dir)
    return dir .. "/reports.db"
end

return M
