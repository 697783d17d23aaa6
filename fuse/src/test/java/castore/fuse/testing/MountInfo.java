package castore.fuse.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * One line of /proc/self/mountinfo: read without touching the mount itself, so it is safe to
 * call whatever state the mount is in.
 *
 * @param mountOptions per-mount options (ro, nosuid, nodev, relatime...)
 * @param fsType       e.g. "fuse.castore"
 * @param source       the fsname
 * @param superOptions per-superblock options (rw/ro, user_id, group_id, default_permissions...)
 */
public record MountInfo(Path mountpoint, Set<String> mountOptions, String fsType, String source,
                        Set<String> superOptions) {

    /** The last (topmost) mount on {@code mountpoint}, if any. */
    public static Optional<MountInfo> find(Path mountpoint) {
        List<String> lines;
        try {
            lines = Files.readAllLines(Path.of("/proc/self/mountinfo"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        MountInfo found = null;
        for (String line : lines) {
            MountInfo info = parse(line);
            if (info.mountpoint().equals(mountpoint.toAbsolutePath().normalize())) {
                found = info;
            }
        }
        return Optional.ofNullable(found);
    }

    // "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue"
    static MountInfo parse(String line) {
        String[] f = line.split(" ");
        int dash = List.of(f).indexOf("-");
        return new MountInfo(Path.of(unescape(f[4])), Set.copyOf(List.of(f[5].split(","))), f[dash + 1], unescape(f[dash + 2]),
                Set.copyOf(List.of(f[dash + 3].split(","))));
    }

    private static String unescape(String s) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 3 < s.length()) {
                sb.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
                i += 3;
            } else {
                sb.append(c);
            }
        }
        return sb.toString();
    }
}
