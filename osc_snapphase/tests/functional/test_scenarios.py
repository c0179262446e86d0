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

"""The scenarios of osc_snapphase.tests.scenarios, against the simulator.

tests/functional_nova/test_scenarios.py runs the same against the real
Nova.
"""

from osc_snapphase.tests.functional import base
from osc_snapphase.tests.scenarios import operations
from osc_snapphase.tests.scenarios import show
from osc_snapphase.tests.scenarios import wait_phase
from osc_snapphase.tests.scenarios import watch


class TestOperations(operations.OperationScenarios, base.TestCase):
    pass


class TestShow(show.ShowScenarios, base.TestCase):
    pass


class TestWatch(watch.WatchScenarios, base.TestCase):
    pass


class TestWaitPhase(wait_phase.WaitPhaseScenarios, base.TestCase):
    pass
