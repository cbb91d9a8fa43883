# The controller image: `make image` (hack/image/build.sh), which fetches the wheels and builds this
# with no network. FROM Debian bases that hack/image/bases.sh makes from Debian's packages (python3 from
# bookworm), so that no image registry is needed either. The final stage has python3, CA certificates
# and the controller's virtualenv: no pip, no compiler. It runs as UID 65532 (the Deployment's
# runAsUser) and works with a read-only root filesystem.
ARG BASE_BUILD=workspace-controller/base-build:bookworm
ARG BASE_RUN=workspace-controller/base-run:bookworm

FROM ${BASE_BUILD} AS build
COPY wheels /wheels
RUN python3 -m venv /opt/workspace-controller \
 && /opt/workspace-controller/bin/pip install --no-index --find-links /wheels --no-compile \
      --disable-pip-version-check --quiet workspace-controller \
 && /opt/workspace-controller/bin/pip uninstall --yes --quiet pip setuptools \
 && /opt/workspace-controller/bin/python -m compileall -q /opt/workspace-controller/lib

FROM ${BASE_RUN}
COPY --from=build /opt/workspace-controller /opt/workspace-controller
# A name for UID 65532 (libraries look the user up), and a HOME on the one writable path (/tmp).
RUN echo 'controller:x:65532:65532:workspace-controller:/tmp:/usr/sbin/nologin' >>/etc/passwd \
 && echo 'controller:x:65532:' >>/etc/group
ENV PATH=/opt/workspace-controller/bin:/usr/bin:/bin \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["workspace-controller"]
