package castore.fuse.api;

/** What INIT negotiated with the kernel: protocol version and capability flags (64 bits). */
public record InitInfo(int major, int minor, long kernelFlags, long negotiatedFlags, int maxReadahead, int maxWrite) {
}
