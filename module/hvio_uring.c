// SPDX-License-Identifier: GPL-2.0
/*
 * hvio: op delivery through io_uring commands (ublk's FETCH_REQ idea).
 *
 * A queue thread of the daemon keeps one HVIO_URING_FETCH in its ring.
 * The FETCH runs the same engine as HVIO_DEV_QUEUE_RUN
 * (hvio_queue_serve()); when it finds nothing and may wait, it parks in
 * q->fetch_cmd instead of completing, and the thread sleeps in
 * io_uring_enter next to its backing I/O.  Who completes a parked FETCH:
 *
 *   - a guest kick (hvio_queue_kick(), bridge IRQ path, dev->lock held,
 *     interrupts off) or a reset (hvio_dev.c): io_uring_cmd_complete_in_task()
 *     queues hvio_uring_fetch_tw() to the daemon's task, which fetches in
 *     its context (q->lock may sleep there), writes the result into the
 *     daemon's memory and completes; a wakeup that brings nothing parks
 *     again.
 *   - HVIO_DEV_QUEUE_UNPARK (the daemon stops): completes with
 *     HVIO_FETCH_OUT_UNPARKED and does not park again.
 *   - a parked FETCH whose task is exiting completes with -ECANCELED:
 *     io_uring on 6.1 cannot cancel a driver's command, and the command
 *     holds a reference to the device file, so a killed daemon would
 *     otherwise keep the device (and the module) for ever.  The exiting
 *     daemon's close of its device fds does it (hvio_dev.c, flush), so the
 *     device is released before the process is reaped, as without
 *     io_uring; uring_work, every HVIO_URING_MONITOR_MS while anything of
 *     the device is parked, catches a task that exits without closing a
 *     device fd last (ublk on 6.1 had such a monitor).
 *
 * A FETCH must not miss a kick that arrives while it fetches (after the
 * re-arm of guest notifications, before it parks): every kick bumps
 * q->kick_seq under dev->lock, and a FETCH parks only if kick_seq is the
 * one it read before fetching, also under dev->lock.
 *
 * The task-work callback may run in io_uring's fallback (the task is
 * exiting, or a kworker runs it): it then never touches user memory and
 * completes with -ECANCELED.
 */
#include <linux/kernel.h>
#include <linux/nospec.h>
#include <linux/sched.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <uapi/linux/virtio_ids.h>

#include "hvio_compat.h"
#include "hvio_internal.h"

/*
 * How often a device with a parked FETCH looks for a dead daemon: the
 * delay between a SIGKILL and the device file's release.  The work runs
 * only while something is parked (an idle daemon: 4 short runs a second).
 */
#define HVIO_URING_MONITOR_MS	250

#if IS_ENABLED(CONFIG_IO_URING)

/* The FETCH payload, kept in the command (the SQE is reused after issue). */
struct hvio_uring_pdu {
	u16 queue;
	u16 max_fetch;
	u32 flags;
	u64 result_addr;
};

static struct hvio_uring_pdu *hvio_uring_pdu(struct io_uring_cmd *cmd)
{
	BUILD_BUG_ON(sizeof(struct hvio_uring_pdu) > sizeof(cmd->pdu));
	return (struct hvio_uring_pdu *)cmd->pdu;
}

static struct hvio_queue *hvio_uring_queue(struct io_uring_cmd *cmd)
{
	struct hvio_dev *dev = cmd->file->private_data;

	return &dev->queues[hvio_uring_pdu(cmd)->queue];
}

/* The FETCH gives up the queue's fetch: another may be issued. */
static void hvio_uring_release(struct hvio_queue *q)
{
	struct task_struct *task;

	spin_lock_irq(&q->dev->lock);
	task = q->fetch_task;
	q->fetch_cmd = NULL;
	q->fetch_task = NULL;
	q->fetch_parked = false;
	spin_unlock_irq(&q->dev->lock);
	if (task)
		put_task_struct(task);
}

static int hvio_uring_put_result(struct hvio_queue *q,
				 struct hvio_uring_pdu *pdu, u64 gen,
				 u32 out_flags, u16 nr)
{
	struct hvio_fetch_result res = {
		.generation = lower_32_bits(gen),
		.generation_hi = upper_32_bits(gen),
		.out_flags = out_flags,
		.nr_fetched = nr,
	};
	void __user *p = u64_to_user_ptr(pdu->result_addr);

	if (nr && copy_to_user(p + sizeof(res), q->fetch_tags,
			       nr * sizeof(*q->fetch_tags)))
		return -EFAULT;
	if (copy_to_user(p, &res, sizeof(res)))
		return -EFAULT;
	WRITE_ONCE(q->gen_reported, gen);
	return nr;
}

/*
 * Fetch for the queue's FETCH: nr_fetched, -errno, or -EIOCBQUEUED when
 * it parked.  Runs in the daemon's task (issue or task work).
 */
static int hvio_uring_fetch_run(struct hvio_queue *q, struct io_uring_cmd *cmd)
{
	struct hvio_uring_pdu *pdu = hvio_uring_pdu(cmd);
	struct hvio_dev *dev = q->dev;
	u32 seq, out_flags;
	u16 nr;
	u64 gen;
	int ret;

	for (;;) {
		spin_lock_irq(&dev->lock);
		seq = q->kick_seq;
		spin_unlock_irq(&dev->lock);
		ret = hvio_queue_serve(q, NULL, 0, q->fetch_tags,
				       pdu->max_fetch,
				       pdu->flags & HVIO_FETCH_F_AGAIN ?
				       HVIO_SERVE_AGAIN : 0, &out_flags, &nr);
		if (ret)
			return ret;

		spin_lock_irq(&dev->lock);
		gen = dev->mmio.generation;
		if (nr || (out_flags & HVIO_RUN_OUT_MORE) ||
		    !(pdu->flags & HVIO_FETCH_F_WAIT))
			break;
		if (q->unpark) {
			q->unpark = false;
			out_flags |= HVIO_FETCH_OUT_UNPARKED;
			break;
		}
		/* The daemon learns of a reset before it sleeps. */
		if (gen != READ_ONCE(q->gen_reported))
			break;
		if (q->kick_seq == seq) {
			q->fetch_parked = true;
			spin_unlock_irq(&dev->lock);
			/* Looks for a dead daemon while anything is parked. */
			schedule_delayed_work(&dev->uring_work,
					      msecs_to_jiffies(HVIO_URING_MONITOR_MS));
			return -EIOCBQUEUED;
		}
		spin_unlock_irq(&dev->lock);
	}
	spin_unlock_irq(&dev->lock);
	return hvio_uring_put_result(q, pdu, gen, out_flags, nr);
}

static void hvio_uring_fetch_tw(struct io_uring_cmd *cmd,
				unsigned int issue_flags)
{
	struct hvio_queue *q = hvio_uring_queue(cmd);
	int ret = -ECANCELED;

	/* io_uring's fallback: not the daemon's memory, or it is going. */
	if (!(current->flags & (PF_EXITING | PF_KTHREAD)))
		ret = hvio_uring_fetch_run(q, cmd);
	if (ret == -EIOCBQUEUED)
		return;
	hvio_uring_release(q);
	hvio_uring_done(cmd, ret, issue_flags);
}

/**
 * hvio_uring_wake() - complete the queue's parked FETCH in its task
 * @q: queue, dev->lock held (any context: the bridge IRQ path)
 * @unpark: the FETCH must complete even with nothing to fetch
 *
 * Also counts as a kick for a FETCH that is fetching right now.
 */
void hvio_uring_wake(struct hvio_queue *q, bool unpark)
{
	lockdep_assert_held(&q->dev->lock);
	q->kick_seq++;
	if (unpark)
		q->unpark = true;
	if (!q->fetch_parked)
		return;
	q->fetch_parked = false;
	io_uring_cmd_complete_in_task(q->fetch_cmd, hvio_uring_fetch_tw);
}

static int hvio_uring_fetch(struct hvio_dev *dev, struct io_uring_cmd *cmd)
{
	const struct hvio_uring_fetch *arg = hvio_uring_payload(cmd);
	struct hvio_uring_pdu *pdu = hvio_uring_pdu(cmd);
	struct hvio_queue *q;
	int ret;

	pdu->queue = READ_ONCE(arg->queue);
	pdu->max_fetch = READ_ONCE(arg->max_fetch);
	pdu->flags = READ_ONCE(arg->flags);
	pdu->result_addr = READ_ONCE(arg->result_addr);
	if ((pdu->flags & ~(HVIO_FETCH_F_WAIT | HVIO_FETCH_F_AGAIN)) ||
	    !pdu->max_fetch)
		return -EINVAL;
	ret = hvio_queue_check(dev, pdu->queue, 0, pdu->max_fetch);
	if (ret)
		return ret;
	pdu->queue = array_index_nospec(pdu->queue, dev->mmio.num_queues);
	q = &dev->queues[pdu->queue];

	spin_lock_irq(&dev->lock);
	if (q->fetch_cmd) {
		spin_unlock_irq(&dev->lock);
		return -EBUSY;
	}
	q->fetch_cmd = cmd;
	q->fetch_task = current;
	get_task_struct(current);
	spin_unlock_irq(&dev->lock);

	ret = hvio_uring_fetch_run(q, cmd);
	if (ret != -EIOCBQUEUED)
		hvio_uring_release(q);
	return ret;
}

/*
 * Net RX with MRG_RXBUF: a fetch holds back buffers short of rx_target
 * while the daemon has RX ops, and gives out what there is once it has
 * none (hvio_net_rx_fetch()).  A commit that gave back the last RX op
 * with such buffers waiting must make a parked FETCH look again, as
 * QUEUE_RUN's fetch after its commit does.  Read without q->lock: the
 * commit and the FETCH are the same task's, and a reset, which changes
 * these too, wakes the FETCH itself.
 */
static bool hvio_uring_rx_waits(struct hvio_queue *q)
{
	return q->dev->mmio.device_id == VIRTIO_ID_NET &&
	       q->index == HVIO_NET_RX_QUEUE && READ_ONCE(q->rx_mrg) &&
	       !READ_ONCE(q->rx_ops) && READ_ONCE(q->nr_spare);
}

static int hvio_uring_commit(struct hvio_dev *dev, struct io_uring_cmd *cmd)
{
	const struct hvio_uring_commit *arg = hvio_uring_payload(cmd);
	struct hvio_completion *commits;
	struct io_uring_cmd *fetch;
	struct hvio_queue *q;
	u16 queue, nr, fetched;
	u32 out_flags, flags, hints;
	bool suppressed, parked;
	u64 addr, stale;
	int ret;

	queue = READ_ONCE(arg->queue);
	nr = READ_ONCE(arg->nr_commit);
	addr = READ_ONCE(arg->commits_addr);
	flags = READ_ONCE(arg->flags);
	if ((flags & ~HVIO_COMMIT_F_FETCH_NEXT) || !nr)
		return -EINVAL;
	ret = hvio_queue_check(dev, queue, nr, 0);
	if (ret)
		return ret;
	q = &dev->queues[array_index_nospec(queue, dev->mmio.num_queues)];
	commits = memdup_user(u64_to_user_ptr(addr), nr * sizeof(*commits));
	if (IS_ERR(commits))
		return PTR_ERR(commits);
	stale = READ_ONCE(q->stats.stale);
	/*
	 * With a FETCH parked, the commit may suppress guest notifications
	 * (polling on): that FETCH, woken below, polls and re-arms them.
	 * The FETCH and this COMMIT are issued by the same task, so it
	 * cannot complete in between; if it is gone anyway, re-arm here.
	 * With HVIO_COMMIT_F_FETCH_NEXT and no FETCH parked the commit
	 * suppresses them without a poll: the FETCH the daemon sends next
	 * re-arms them.  A parked FETCH is the one the daemon meant (it
	 * sends no other while it is out) and waits for a kick: then the
	 * flag does nothing.  Only this task runs its fetch, so it cannot
	 * park in between.
	 */
	parked = READ_ONCE(q->fetch_parked);
	hints = parked ? HVIO_SERVE_POLL : 0;
	if ((flags & HVIO_COMMIT_F_FETCH_NEXT) && !parked)
		hints |= HVIO_SERVE_FETCH_NEXT;
	ret = hvio_queue_serve(q, commits, nr, NULL, 0, hints, &out_flags,
			       &fetched);
	kfree(commits);
	/*
	 * A stale op's commit may free a head the new rings wait on (a
	 * fetch stops there without MORE, after QueueReady = 0): QUEUE_RUN
	 * fetches right after its commit, a parked FETCH must look again.
	 */
	suppressed = READ_ONCE(q->poll_suppressed);
	if (READ_ONCE(q->stats.stale) != stale || suppressed ||
	    hvio_uring_rx_waits(q)) {
		spin_lock_irq(&dev->lock);
		fetch = q->fetch_cmd;
		hvio_uring_wake(q, false);
		spin_unlock_irq(&dev->lock);
		if (suppressed && !fetch)
			hvio_queue_poll_cancel(q);
	}
	return ret;
}

/**
 * hvio_uring_cmd() - the device fd's f_op->uring_cmd
 * @cmd: HVIO_URING_FETCH or HVIO_URING_COMMIT
 * @issue_flags: io_uring's
 *
 * Return: the CQE's result, or -EIOCBQUEUED for a parked FETCH.
 */
int hvio_uring_cmd(struct io_uring_cmd *cmd, unsigned int issue_flags)
{
	struct hvio_dev *dev = cmd->file->private_data;

	switch (cmd->cmd_op) {
	case HVIO_URING_FETCH:
		return hvio_uring_fetch(dev, cmd);
	case HVIO_URING_COMMIT:
		return hvio_uring_commit(dev, cmd);
	default:
		return -EINVAL;
	}
}

/**
 * hvio_uring_reap_exiting() - complete parked FETCHes of exiting tasks
 * @dev: device
 *
 * Such a FETCH never runs its task work in the daemon's context again:
 * complete it here, with -ECANCELED, so it lets go of the device file.
 *
 * Return: true while a FETCH of a live task stays parked.
 */
bool hvio_uring_reap_exiting(struct hvio_dev *dev)
{
	struct io_uring_cmd *cmd;
	struct task_struct *task;
	bool parked = false;
	struct hvio_queue *q;
	u32 i;

	for (i = 0; i < dev->mmio.num_queues; i++) {
		q = &dev->queues[i];
		cmd = NULL;
		task = NULL;
		spin_lock_irq(&dev->lock);
		if (q->fetch_parked && (q->fetch_task->flags & PF_EXITING)) {
			cmd = q->fetch_cmd;
			task = q->fetch_task;
			q->fetch_cmd = NULL;
			q->fetch_task = NULL;
			q->fetch_parked = false;
		}
		parked |= q->fetch_parked;
		spin_unlock_irq(&dev->lock);
		if (!cmd)
			continue;
		pr_debug(HVIO_NAME ": zone %u dev %#llx queue %u: FETCH of an exiting task cancelled\n",
			 dev->zone->id, dev->mmio_base, i);
		hvio_uring_done(cmd, -ECANCELED, 0);
		put_task_struct(task);
	}
	return parked;
}

static void hvio_uring_monitor(struct work_struct *work)
{
	struct hvio_dev *dev = container_of(to_delayed_work(work),
					    struct hvio_dev, uring_work);

	if (hvio_uring_reap_exiting(dev))
		schedule_delayed_work(&dev->uring_work,
				      msecs_to_jiffies(HVIO_URING_MONITOR_MS));
}

#else /* !CONFIG_IO_URING */

int hvio_uring_cmd(struct io_uring_cmd *cmd, unsigned int issue_flags)
{
	return -EOPNOTSUPP;
}

void hvio_uring_wake(struct hvio_queue *q, bool unpark)
{
	q->kick_seq++;
	if (unpark)
		q->unpark = true;
}

bool hvio_uring_reap_exiting(struct hvio_dev *dev)
{
	return false;
}

static void hvio_uring_monitor(struct work_struct *work)
{
}

#endif /* CONFIG_IO_URING */

/**
 * hvio_uring_unpark() - HVIO_DEV_QUEUE_UNPARK
 * @dev: device
 * @argp: struct hvio_queue_unpark
 *
 * Return: 0, -EFAULT or -EINVAL.
 */
long hvio_uring_unpark(struct hvio_dev *dev, void __user *argp)
{
	struct hvio_queue_unpark arg;
	struct hvio_queue *q;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	if (arg.reserved0 || arg.reserved || arg.queue >= dev->mmio.num_queues)
		return -EINVAL;
	q = &dev->queues[array_index_nospec(arg.queue, dev->mmio.num_queues)];
	spin_lock_irq(&dev->lock);
	hvio_uring_wake(q, true);
	spin_unlock_irq(&dev->lock);
	return 0;
}

/**
 * hvio_uring_init() - set up a new device's io_uring state
 * @dev: device being created
 */
void hvio_uring_init(struct hvio_dev *dev)
{
	INIT_DELAYED_WORK(&dev->uring_work, hvio_uring_monitor);
}

/**
 * hvio_uring_stop() - the device is going: no monitor runs after this
 * @dev: device without file (so without a parked FETCH)
 */
void hvio_uring_stop(struct hvio_dev *dev)
{
	cancel_delayed_work_sync(&dev->uring_work);
}
