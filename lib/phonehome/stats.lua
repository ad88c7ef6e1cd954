-- Summaries of samples: min, max, mean, median and mode, as products report them.
local M = {}

-- summary(samples) -> { min, max, mean, median, mode }. With no samples every figure
-- is 0 and the mode is nil (null). The mode is the most frequent sample, the smallest
-- of those when several are as frequent; nil when no sample repeats in a larger set.
function M.summary(samples)
    local n = #samples
    if n == 0 then return { min = 0, max = 0, mean = 0, median = 0, mode = nil } end
    local sorted = {}
    for i, v in ipairs(samples) do sorted[i] = v end
    table.sort(sorted)
    local sum = 0
    for _, v in ipairs(sorted) do sum = sum + v end
    local median
    if n % 2 == 1 then
        median = sorted[(n + 1) // 2]
    else
        median = (sorted[n // 2] + sorted[n // 2 + 1]) / 2
    end
    local best, best_count, run = nil, 0, 0
    for i, v in ipairs(sorted) do
        run = (i > 1 and sorted[i - 1] == v) and run + 1 or 1
        if run > best_count then best, best_count = v, run end
    end
    if best_count == 1 and n > 1 then best = nil end
    return { min = sorted[1], max = sorted[n], mean = sum / n, median = median, mode = best }
end

return M
