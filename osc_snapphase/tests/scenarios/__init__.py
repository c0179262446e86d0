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

"""One functional suite, two clouds.

The scenarios (show, watch, ``--wait-phase``, failures, faults, signals,
and what Nova itself does during an image-create, seen through core
commands) are written once, as mixins, against the small cloud interface of
:class:`~.base.CLITestCase`.  ``tests/functional/test_scenarios.py`` binds
them to the bundled simulator (``tox -e functional``) and
``tests/functional_nova/test_scenarios.py`` to the real Nova run in-process
(``tox -e functional-nova``): whatever the simulator does differently from
Nova fails one of the two.
"""
