// SPDX-License-Identifier: GPL-2.0
//
// Result<T>: a value or a negative errno, for calls that cross the kernel
// ABI.  (std::expected is C++23 and not in GCC 12's libstdc++.)  The errno
// travels untouched so callers can report it with strerror().
#pragma once

#include <cassert>
#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace hvio {

// A failed call: the positive errno value.
struct Error {
    int err;
    explicit Error(int e) : err(e < 0 ? -e : e) {}
    std::string message() const;
};

// Error from the current errno.
inline Error last_error() { return Error(errno); }

template <typename T> class [[nodiscard]] Result {
  public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error e) : v_(e) {}

    bool ok() const { return std::holds_alternative<T>(v_); }
    explicit operator bool() const { return ok(); }

    T &value() & {
        assert(ok());
        return std::get<T>(v_);
    }
    T &&value() && {
        assert(ok());
        return std::get<T>(std::move(v_));
    }
    const T &value() const & {
        assert(ok());
        return std::get<T>(v_);
    }
    T &operator*() & { return value(); }
    const T &operator*() const & { return value(); }
    T *operator->() { return &value(); }
    const T *operator->() const { return &value(); }

    // Positive errno; only valid when !ok().
    int error() const {
        assert(!ok());
        return std::get<Error>(v_).err;
    }
    std::string message() const { return std::get<Error>(v_).message(); }

  private:
    std::variant<T, Error> v_;
};

// Result of a call that returns nothing.
template <> class [[nodiscard]] Result<void> {
  public:
    Result() = default;
    Result(Error e) : err_(e.err) {}

    bool ok() const { return err_ == 0; }
    explicit operator bool() const { return ok(); }
    int error() const { return err_; }
    std::string message() const { return Error(err_).message(); }

  private:
    int err_ = 0;
};

} // namespace hvio
