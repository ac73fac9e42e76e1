# What manifests/README.md tells users to do: build FROM the rollgate image, COPY the migrations
# to /migrations. Built in the e2e job from the image it just built (rollgate:e2e).
ARG ROLLGATE_IMAGE=rollgate:e2e
FROM ${ROLLGATE_IMAGE}
COPY migrations/0001_create_widgets.up.sql migrations/0001_create_widgets.down.sql \
     migrations/0002_create_gadgets.up.sql migrations/0002_create_gadgets.down.sql /migrations/
