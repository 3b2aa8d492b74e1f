// SPDX-License-Identifier: GPL-2.0
//
// How the daemon stops: SIGTERM/SIGINT through a signalfd (SIGHUP
// ignored) or a queue thread's fatal error, then the drain of every queue
// under --drain-timeout; exit_now() when a second signal or the timeout
// cuts the drain short, naming what was still in flight.
#include "daemon.h"
#include "log.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <poll.h>
#include <pthread.h>
#include <string>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace hvio {

namespace {

// The next signal: SIGTERM or SIGINT (returned), SIGHUP (ignored, 0
// returned), or none readable (0).
int read_signal(int sigfd) {
    signalfd_siginfo si;
    if (::read(sigfd, &si, sizeof(si)) != sizeof(si))
        return 0;
    const int sig = static_cast<int>(si.ssi_signo);
    if (sig == SIGHUP) {
        log_line(LogLevel::kInfo, "SIGHUP ignored (SIGTERM stops the daemon)");
        return 0;
    }
    return sig;
}

} // namespace

// Signals arrive through a signalfd, in the main thread only: block
// them before any thread starts (threads inherit the mask).  The two
// eventfds on which the queue threads report (thread_done()) with them.
int Daemon::open_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    sigfd_.reset(::signalfd(-1, &set, SFD_CLOEXEC));
    fatal_efd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    done_efd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!sigfd_ || !fatal_efd_ || !done_efd_) {
        std::fprintf(stderr, "hvio: signalfd/eventfd: %s\n", std::strerror(errno));
        return kExitError;
    }
    return kExitOk;
}

void Daemon::wait_for_stop() {
    for (;;) {
        pollfd p[2] = {{sigfd_.get(), POLLIN, 0}, {fatal_efd_.get(), POLLIN, 0}};
        if (::poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        if (p[0].revents) {
            if (int sig = read_signal(sigfd_.get())) {
                std::string limit = drain_timeout_s_
                                        ? "at most " + std::to_string(drain_timeout_s_) + " s"
                                        : "no time limit";
                log_line(LogLevel::kInfo,
                         "%s: finishing I/O in flight (%s; a second SIGTERM or SIGINT exits at "
                         "once), then exiting",
                         strsignal(sig), limit.c_str());
                return;
            }
        }
        if (p[1].revents)
            return;
    }
}

// What the queues still have in flight, for the last words of exit_now().
std::string Daemon::in_flight() {
    std::string out;
    auto add = [&out](const std::string &what, uint64_t n, const char *unit) {
        if (!n)
            return;
        out += (out.empty() ? "" : ", ") + what + ": " + std::to_string(n) + " " + unit;
    };
    for (const auto &d : devs_)
        for (const auto &q : d->queues)
            if (q->thread.joinable())
                add(d->target.where + " queue " + std::to_string(q->queue->index()),
                    q->queue->counters().inflight.load(), "ops in flight");
    for (const auto &n : nets_) {
        if (!n->thread.joinable())
            continue;
        const NetCounters &c = n->queue->counters();
        add(n->where + " TX", c.tx_inflight.load(), "ops in flight");
        add(n->where + " RX", c.rx_armed.load(), "buffers armed");
    }
    for (const auto &d : cons_) {
        if (!d->thread.joinable())
            continue;
        add(d->where + " TX", d->queue->counters().tx_held.load(), "ops in flight");
        add(d->where + " RX", d->queue->counters().rx_held.load(), "buffers held");
    }
    return out.empty() ? "no op counted, a queue thread is stuck" : out;
}

// Ends the process without waiting for the queues: their devices are not
// destroyed, so the kernel keeps them for the next `hvio run` (recovery),
// which hands it the ops still in flight.
void Daemon::exit_now(const char *why) {
    std::fprintf(stderr,
                 "hvio: %s: exiting now with I/O in flight (%s); the devices stay for the next "
                 "`hvio run` (or `hvio stop CONFIG`)\n",
                 why, in_flight().c_str());
    status_.stop();
    std::fflush(nullptr);
    std::_Exit(kExitError);
}

int Daemon::stop_and_drain() {
    (void)notify_.stopping();
    stop_.store(true, std::memory_order_release);
    for (auto &d : devs_)
        for (auto &q : d->queues) {
            // The QUEUE_RUN loop sleeps on the eventfd, the io_uring loop
            // on its parked FETCH.
            uint64_t one = 1;
            (void)!::write(q->efd.get(), &one, sizeof(one));
            (void)q->backend->unpark();
        }
    for (auto &n : nets_) {
        for (auto &efd : n->efd) {
            uint64_t one = 1;
            if (efd)
                (void)!::write(efd.get(), &one, sizeof(one));
        }
        for (uint16_t q = 0; q < 2 && n->backend; q++)
            (void)n->backend->unpark(q);
    }
    for (auto &d : cons_)
        for (uint16_t q = 0; q < 2 && d->queue; q++)
            (void)d->dev.queue_unpark(q);
    // Wait for the queues while still reading signals: a second SIGTERM or
    // SIGINT, or the drain timeout, ends the process now.
    unsigned threads = 0;
    for (auto &d : devs_)
        for (auto &q : d->queues)
            threads += q->thread.joinable();
    for (auto &n : nets_)
        threads += n->thread.joinable();
    for (auto &d : cons_)
        threads += d->thread.joinable();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(drain_timeout_s_);
    while (threads_done_.load(std::memory_order_acquire) < threads) {
        int ms = -1;
        if (drain_timeout_s_) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                std::string why = "drain timeout (" + std::to_string(drain_timeout_s_) + " s)";
                exit_now(why.c_str());
            }
            ms = static_cast<int>(left.count());
        }
        pollfd p[2] = {{sigfd_.get(), POLLIN, 0}, {done_efd_.get(), POLLIN, 0}};
        if (::poll(p, 2, ms) < 0 && errno != EINTR)
            break;
        if (p[0].revents & POLLIN)
            if (int sig = read_signal(sigfd_.get())) {
                std::string why = std::string(strsignal(sig)) + " again";
                exit_now(why.c_str());
            }
        if (p[1].revents & POLLIN) {
            uint64_t n;
            (void)!::read(done_efd_.get(), &n, sizeof(n));
        }
    }
    int ret = kExitOk;
    for (auto &d : devs_)
        for (auto &q : d->queues) {
            if (q->thread.joinable())
                q->thread.join();
            if (q->result < 0)
                ret = kExitError;
        }
    for (auto &n : nets_) {
        if (n->thread.joinable())
            n->thread.join();
        if (n->result < 0)
            ret = kExitError;
    }
    for (auto &d : cons_) {
        if (d->thread.joinable())
            d->thread.join();
        if (d->result < 0)
            ret = kExitError;
    }
    return ret;
}

} // namespace hvio
