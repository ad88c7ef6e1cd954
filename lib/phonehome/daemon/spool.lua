-- A product's reports waiting to be delivered, oldest first, each kept on disk (see
-- datadir) as the body it will be sent as. Bounded in count and bytes; the oldest go
-- first. When the disk refuses, a report waits in memory instead.
local core = require("phonehome.core")
local datadir = require("phonehome.daemon.datadir")
local log = require("phonehome.base.log")

local M = {}

local Spool = {}
Spool.__index = Spool

-- open(data_dir, product, bounds) -> spool, with what an earlier run left in it.
-- bounds: { spool_reports, spool_bytes }.
function M.open(data_dir, product, bounds)
    local s = setmetatable({ product = product, data_dir = data_dir, entries = {}, seq = 0,
                             max_reports = bounds.spool_reports, max_bytes = bounds.spool_bytes },
                           Spool)
    local entries, bad = datadir.spooled(data_dir, product)
    s.entries = entries
    -- never sent as it is, nor counted: set aside for the operator to look at
    for _, b in ipairs(bad) do
        local aside, why = datadir.set_aside(b.file)
        log.warn({ product = product, msg = "spooled report cannot be read; set aside",
                   file = b.file, error = b.error, moved_to = aside, cannot_move = why })
    end
    if #s.entries > 0 then s.seq = s.entries[#s.entries].seq end
    return s
end

function Spool:depth()
    return #self.entries
end

function Spool:bytes()
    local n = 0
    for _, e in ipairs(self.entries) do n = n + #e.body end
    return n
end

-- push(key, body): appends a report, dropping the oldest past the bounds.
function Spool:push(key, body)
    self.seq = self.seq + 1
    local e = { seq = self.seq, key = key, body = body }
    local file, err = datadir.spool(self.data_dir, self.product, e.seq, key, body)
    if file then
        e.file = file
    else
        log.warn({ product = self.product, msg = "cannot spool the report; keeping it in memory",
                   error = err })
    end
    self.entries[#self.entries + 1] = e
    while #self.entries > self.max_reports
        or (#self.entries > 1 and self:bytes() > self.max_bytes) do
        local old = table.remove(self.entries, 1)
        log.warn({ product = self.product, msg = "spool full: dropped the oldest report",
                   key = old.key, max_reports = self.max_reports, max_bytes = self.max_bytes })
        if old.file then core.remove(old.file) end
    end
    return e
end

-- The oldest report, or nil.
function Spool:head()
    return self.entries[1]
end

-- Removes a report once it is delivered or refused for good.
function Spool:remove(e)
    for i, x in ipairs(self.entries) do
        if x == e then
            table.remove(self.entries, i)
            break
        end
    end
    if e.file then core.remove(e.file) end
end

-- Writes to disk what could only be kept in memory (at shutdown).
function Spool:persist()
    for _, e in ipairs(self.entries) do
        if not e.file then
            e.file = datadir.spool(self.data_dir, self.product, e.seq, e.key, e.body)
        end
    end
end

return M
