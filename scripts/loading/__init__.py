"""Loading: discover the roots, render them (kustomize, Flux builds), read refs."""
