# Offline stand-in for the official zookeeper image, from Debian's `zookeeper` package: one standalone server
# on port 2181 with its data in /data, like the official image's default. Built by compose/test/offline.sh
# on the debootstrapped debian:bookworm-slim.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends zookeeper \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data /conf \
 && printf '%s\n' 'tickTime=2000' 'initLimit=10' 'syncLimit=5' 'dataDir=/data' 'clientPort=2181' \
      'admin.enableServer=false' '4lw.commands.whitelist=ruok,srvr' > /conf/zoo.cfg
ENV PATH=/usr/share/zookeeper/bin:$PATH
EXPOSE 2181
CMD ["java", "-Xmx256m", "-Dzookeeper.root.logger=INFO,CONSOLE", "-cp", "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar", \
     "org.apache.zookeeper.server.quorum.QuorumPeerMain", "/conf/zoo.cfg"]
