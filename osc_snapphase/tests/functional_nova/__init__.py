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

"""Functional tests against the real Nova, run in-process.

Nothing in the product (or the unit tests) may import this package: it needs
``nova`` and ``openstack-placement`` (see functional-nova-requirements.txt)
and starts a whole cloud.  Nova must run in native-thread mode, which has to
be chosen before ``nova`` is first imported, hence the environment variable
set here, before any module of this package imports nova.
"""

import os

os.environ.setdefault('OS_NOVA_DISABLE_EVENTLET_PATCHING', '1')

# As nova's own functional tests do: choose the concurrency mode (and poison
# eventlet imports in native-thread mode) before anything imports futurist
# or oslo.service.
import nova.tests.functional  # noqa: E402,F401
