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

"""Image operations in-process: a Cloud whose timers run in order.

No clock and no thread: each timer waits in a list until run_timers()
calls it, in the order they were set, whatever its delay.
"""

import testtools

from osc_snapphase.simulator import cloud as cloud_mod
from osc_snapphase.simulator import control
from osc_snapphase.simulator import runner
from osc_snapphase.simulator import tasks


class OperationCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.cloud = cloud_mod.Cloud()
        self.addCleanup(self.cloud.timers.stop)
        runner.seed(self.cloud)
        self.timers = []
        self.cloud.later = self.later
        user = self.cloud.users['demo']
        project = self.cloud.projects['demo']
        self.ctx = {'user_id': user['id'], 'user_name': 'demo',
                    'project_id': project['id'], 'project_name': 'demo',
                    'roles': list(user['roles'])}

    def later(self, name_or_delay, func, *args):
        self.timers.append((func, args))

    def run_timers(self):
        while self.timers:
            func, args = self.timers.pop(0)
            func(*args)

    def server(self, driver):
        server = tasks.new_server(self.cloud, self.cloud.projects['demo'],
                                  self.cloud.users['demo'], driver)
        self.cloud.update_server(server, vm_state='active', task_state=None,
                                 power_state=1)
        server['driver'] = driver
        return server

    def task_states(self, server):
        """The task states written since the server became active."""
        states = [e['new'] for e in self.cloud.log
                  if e['id'] == server['id'] and e['field'] == 'task_state']
        return states[states.index(None) + 1:]

    def image_statuses(self, image):
        return [e['new'] for e in self.cloud.log if e['id'] == image['id']]

    def add_fault(self, server, phase, kind):
        """An operation fault (control.check_op_fault) for server."""
        self.cloud.op_faults.append(control.check_op_fault(
            {'phase': phase, 'kind': kind, 'server': server['id']}))

    def snapshot(self, server, backup=False):
        if backup:
            return tasks.start_snapshot(self.cloud, server, self.ctx,
                                        'createBackup', 'bk1', {},
                                        ('daily', 2))
        return tasks.start_snapshot(self.cloud, server, self.ctx,
                                    'createImage', 'snap1', {})
