#   Licensed under the Apache License, Version 2.0 (the "License"); you may
#   not use this file except in compliance with the License. You may obtain
#   a copy of the License at
#
#        http://www.apache.org/licenses/LICENSE-2.0
#
#   Unless required by applicable law or agreed to in writing, software
#   distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#   WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#   License for the specific language governing permissions and limitations
#   under the License.

"""The order of an image-create in each Nova virt driver, as data.

Source: nova 34 (see capture-points.md). An order is a tuple of steps
run one after the other; each step is held and faulted by its name, and
lasts the named duration of Cloud.durations.
"""

import collections

# name: hold/fault step; task_state: set when the step starts (None:
# unchanged); duration: a Cloud.durations key; image: Glance status set
# when the step starts; copy: the disk copy runs during this step, which
# then is also the step 'copy' (held once the copy has started).
Step = collections.namedtuple('Step', 'name task_state duration image copy')
Step.__new__.__defaults__ = (None, False)

# Where the copy's content is fixed (its point in time):
#   'end': when the copy step ends (a mirror abort, VDI.snapshot,
#          CreateSnapshot_Task);
#   'start': when the copy step starts (the guest is suspended first, or
#          the rbd snapshot is taken first);
#   'suspend': at the managedSave that ends image_snapshot/image_backup;
#          the guest stays suspended until the copy step ends.
Driver = collections.namedtuple('Driver', 'name order fixed disk_format')

PENDING = Step('pending', 'image_snapshot_pending', 'pending')
SNAPSHOT = Step('snapshot', 'image_snapshot', 'snapshot')
PENDING_UPLOAD = Step('pending_upload', 'image_pending_upload',
                      'pending_upload')
UPLOAD = Step('uploading', 'image_uploading', 'uploading', 'saving')
# libvirt writes image_pending_upload and image_uploading a few ms apart,
# then bounces back to image_pending_upload when the disk has no direct
# snapshot (all but rbd). That image_uploading (image queued) is the
# step 'bounce', so that 'uploading' is always the last image_uploading
# (the upload; rbd: the direct snapshot).
PREP = Step('pending_upload', 'image_pending_upload', 'bounce')
BOUNCE = Step('bounce', 'image_uploading', 'bounce')
COPY = Step('pending_upload', 'image_pending_upload', 'copy', copy=True)

DRIVERS = collections.OrderedDict((d.name, d) for d in (
    Driver('xenserver', (PENDING, SNAPSHOT._replace(copy=True),
                         PENDING_UPLOAD, UPLOAD), 'end', None),
    Driver('libvirt-file', (PENDING, SNAPSHOT, PREP, BOUNCE, COPY, UPLOAD),
           'end', 'qcow2'),
    Driver('libvirt-lvm', (PENDING, SNAPSHOT, PREP, BOUNCE, COPY, UPLOAD),
           'suspend', 'raw'),
    # rbd snapshot some time after image_uploading, then clone + flatten;
    # Glance goes queued -> active by a location, never saving.
    Driver('libvirt-rbd', (PENDING, SNAPSHOT, PREP,
                           Step('uploading', 'image_uploading',
                                'rbd_snapshot'),
                           Step('copy', None, 'flatten', copy=True)),
           'start', 'raw'),
    Driver('libvirt-rbd-fallback', (PENDING, SNAPSHOT, PREP, BOUNCE, COPY,
                                    UPLOAD), 'start', 'raw'),
    Driver('vmware', (PENDING, SNAPSHOT, COPY, UPLOAD), 'end', 'vmdk'),
))
NAMES = tuple(DRIVERS)
STEPS = ('pending', 'snapshot', 'backup', 'pending_upload', 'bounce',
         'copy', 'uploading')


def order(driver, backup=False):
    """Return the steps of a createImage (or createBackup) in driver.

    A backup writes image_backup where a snapshot writes
    image_snapshot_pending and image_snapshot.
    """
    steps = DRIVERS[driver].order
    if not backup:
        return steps
    return tuple(s._replace(name='backup', task_state='image_backup',
                            duration='backup')
                 if s.name == 'snapshot' else s
                 for s in steps if s.name != 'pending')


def check(driver):
    if driver not in DRIVERS:
        raise ValueError('driver must be one of %s' % ', '.join(NAMES))
    return driver
