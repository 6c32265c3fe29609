"""Options shared by the whole test suite."""


def pytest_addoption(parser):
    parser.addoption(
        "--target", action="append", default=[], metavar="PATH",
        help="policy suite: only the roots at or under PATH (like `validate --target`)")
    parser.addoption(
        "--kubernetes-version", default=None, metavar="X.Y",
        help="policy suite: the Kubernetes version to check APIs against")
