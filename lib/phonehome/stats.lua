-- Summaries of samples: min, max, mean, median and mode, as products report them; of a
-- plain list, or of distinct values with how many times each was seen.
local M = {}

-- The value at 1-based position k of the sorted values each repeated counts[i] times.
local function at(values, counts, k)
    local seen = 0
    for i, v in ipairs(values) do
        seen = seen + counts[i]
        if seen >= k then return v end
    end
    return values[#values]
end

-- summary(samples [, counts]) -> { min, max, mean, median, mode }. samples: the values,
-- or with counts the distinct values each seen counts[i] times. With no samples every
-- figure is 0 and the mode is nil (null). The mode is the most frequent sample, the
-- smallest of those when several are as frequent; nil when no sample repeats in a larger
-- set.
function M.summary(samples, counts)
    local pairs_ = {}
    for i = 1, #samples do pairs_[i] = { samples[i], counts and counts[i] or 1 } end
    if #pairs_ == 0 then return { min = 0, max = 0, mean = 0, median = 0, mode = nil } end
    table.sort(pairs_, function(a, b) return a[1] < b[1] end)
    -- equal values side by side become one
    local values, weights = {}, {}
    for _, pv in ipairs(pairs_) do
        if #values > 0 and values[#values] == pv[1] then
            weights[#weights] = weights[#weights] + pv[2]
        else
            values[#values + 1], weights[#weights + 1] = pv[1], pv[2]
        end
    end
    local n, sum, best, best_count = 0, 0, nil, 0
    for i, v in ipairs(values) do
        n, sum = n + weights[i], sum + v * weights[i]
        if weights[i] > best_count then best, best_count = v, weights[i] end
    end
    local median = n % 2 == 1 and at(values, weights, (n + 1) // 2)
        or (at(values, weights, n // 2) + at(values, weights, n // 2 + 1)) / 2
    if best_count == 1 and n > 1 then best = nil end
    return { min = values[1], max = values[#values], mean = sum / n, median = median,
             mode = best }
end

-- percentile(values, counts, q) -> the q-th percentile (0 to 100) by nearest rank of
-- the sorted distinct values each seen counts[i] times; nil when there are none.
function M.percentile(values, counts, q)
    local n = 0
    for _, c in ipairs(counts) do n = n + c end
    if n == 0 then return nil end
    return at(values, counts, math.max(1, math.ceil(q / 100 * n)))
end

-- percentiles(values, counts) -> percentile(q): M.percentile of those, q checked (an
-- error at the caller's caller names what was given).
function M.percentiles(values, counts)
    return function(q)
        if type(q) ~= "number" or q < 0 or q > 100 then
            error("percentile: expected a number from 0 to 100, got " .. tostring(q), 2)
        end
        return M.percentile(values, counts, q)
    end
end

return M
