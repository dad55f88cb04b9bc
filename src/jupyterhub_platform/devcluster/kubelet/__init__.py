"""A kubelet for the development cluster: runs the API server's pods on this machine.

``Kubelet(api_url, state_dir, mode)`` watches every pod through the Kubernetes REST API and runs
it as local processes ("process" mode) or as in-process HTTP stubs ("light" mode, for load tests).
"""

from .agent import Kubelet

__all__ = ["Kubelet"]
