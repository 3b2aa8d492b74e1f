// SPDX-License-Identifier: GPL-2.0
//
// The daemon's queue threads: one per blk queue, one per net device and
// one per console, started once the devices are ready; what each reports
// when its loop returns; and the teardown that undoes startup.
#include "daemon.h"

#include <cstdio>
#include <cstring>
#include <pthread.h>
#include <string>
#include <thread>
#include <unistd.h>

namespace hvio {

int Daemon::start_threads() {
    for (auto &d : devs_) {
        for (auto &rt : d->queues) {
            QueueRt *q = rt.get();
            BlkDevice *dev = d.get();
            q->thread = std::thread([this, q, dev] {
                q->result = q->queue->run();
                thread_done(q->result,
                            dev->target.where + " queue " + std::to_string(q->queue->index()));
            });
            char name[16];
            std::snprintf(name, sizeof(name), "hvio-z%ud%zuq%u", d->zone_id,
                          static_cast<size_t>(&d - devs_.data()), q->queue->index());
            pthread_setname_np(q->thread.native_handle(), name);
        }
    }
    for (auto &n : nets_) {
        NetDevice *d = n.get();
        d->thread = std::thread([this, d] {
            d->result = d->queue->run();
            thread_done(d->result, d->where);
        });
        char name[16];
        std::snprintf(name, sizeof(name), "hvio-z%un%zu", d->zone_id,
                      static_cast<size_t>(&n - nets_.data()));
        pthread_setname_np(d->thread.native_handle(), name);
    }
    for (auto &cd : cons_) {
        ConsoleDevice *d = cd.get();
        d->thread = std::thread([this, d] {
            d->result = d->queue->run();
            thread_done(d->result, d->where);
        });
        char name[16];
        std::snprintf(name, sizeof(name), "hvio-z%uc%zu", d->zone_id,
                      static_cast<size_t>(&cd - cons_.data()));
        pthread_setname_np(d->thread.native_handle(), name);
    }
    return kExitOk;
}

// A queue thread's run() returned (on its own only after a fatal error).
void Daemon::thread_done(int result, const std::string &what) {
    uint64_t one = 1;
    if (result < 0) {
        std::fprintf(stderr, "hvio: %s: %s; stopping\n", what.c_str(), std::strerror(-result));
        (void)!::write(fatal_efd_.get(), &one, sizeof(one));
    }
    threads_done_.fetch_add(1, std::memory_order_release);
    (void)!::write(done_efd_.get(), &one, sizeof(one));
}

// Undo what startup did, in reverse: devices (mappings, then fds), then
// zones, then the socket.  Safe to call twice.
void Daemon::teardown() {
    status_.stop();
    bool running = false;
    for (auto &d : devs_)
        for (auto &q : d->queues)
            running |= q->thread.joinable();
    for (auto &n : nets_)
        running |= n->thread.joinable();
    for (auto &d : cons_)
        running |= d->thread.joinable();
    if (running)
        stop_and_drain();
    // After startup every device goes; a failed startup leaves the orphans
    // it took over for the next try (the guest still has them).
    bool kept = false;
    auto settle = [&](const DeviceFd &dev, bool reattached) {
        if (dev.fd() < 0)
            return;
        if (ready_ || !reattached)
            (void)dev.destroy_on_close();
        else
            kept = true;
    };
    for (auto &d : devs_)
        settle(d->dev, d->reattached);
    for (auto &n : nets_) {
        settle(n->dev, n->reattached);
        // A TAP hvio created goes with its device (kept with an orphan).
        if (int r = ready_ || !n->reattached ? tap_release(n->tap) : 0; r < 0)
            std::fprintf(stderr, "hvio: %s: TUNSETPERSIST 0 on %s: %s\n", n->where.c_str(),
                         n->tap.name.c_str(), std::strerror(-r));
    }
    for (auto &d : cons_) {
        settle(d->dev, d->reattached);
        d->pty.remove_link();
        d->socket.remove();
    }
    devs_.clear();
    nets_.clear();
    cons_.clear();
    if (ctl_ && kept)
        zones_added_.clear(); // they hold the orphans
    if (ctl_) {
        for (auto it = zones_added_.rbegin(); it != zones_added_.rend(); ++it)
            if (auto r = ctl_->zone_del(*it); !r)
                std::fprintf(stderr, "hvio: zone %u: HVIO_ZONE_DEL: %s\n", *it,
                             r.message().c_str());
        zones_added_.clear();
    }
}

} // namespace hvio
