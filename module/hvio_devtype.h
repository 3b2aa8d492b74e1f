/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hvio: the device types listed in hvio_devtypes[] (hvio_dev.c).
 *
 * Included only by that table and by the types' own files: the queue
 * engine reaches a type through dev->type (struct hvio_devtype,
 * hvio_internal.h) and names none.
 */
#ifndef _HVIO_DEVTYPE_H
#define _HVIO_DEVTYPE_H

#include "hvio_internal.h"

extern const struct hvio_devtype hvio_blk_type;	/* hvio_blk.c */
extern const struct hvio_devtype hvio_net_type;	/* hvio_net.c */
extern const struct hvio_devtype hvio_console_type;	/* hvio_console.c */

#endif /* _HVIO_DEVTYPE_H */
