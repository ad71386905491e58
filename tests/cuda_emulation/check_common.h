// What the kernel checks share: the relative error of a kernel's output against a reference computed in double.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

template <typename T> double rel_err(const std::vector<T> &a, const std::vector<double> &ref) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        if (!std::isfinite((double)a[i])) return INFINITY;  // an element left unwritten (poisoned)
        num += ((double)a[i] - ref[i]) * ((double)a[i] - ref[i]);
        den += ref[i] * ref[i];
    }
    return std::sqrt(num / std::max(den, 1e-300));
}
