// A stand-in for OPatch's own installer (6880880/opatch_generic.jar in patch 28186730), for
// tests: it takes the command line WIT's Dockerfile runs,
//   java -jar opatch_generic.jar -silent -ignoreSysPrereqs -force -novalidation oracle_home=DIR
// and installs the OPatch it carries (the `opatch` script and version.txt, jar resources) into
// DIR/OPatch, replacing the one there, as the real installer upgrades OPatch in place.
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;

public class OpatchUpgrade {
    public static void main(String[] args) throws Exception {
        String home = null;
        boolean silent = false;
        for (String arg : args) {
            if (arg.startsWith("oracle_home=")) {
                home = arg.substring("oracle_home=".length());
            } else if (arg.equals("-silent")) {
                silent = true;
            }
        }
        if (!silent || home == null) {
            System.err.println("usage: java -jar opatch_generic.jar -silent oracle_home=DIR");
            System.exit(2);
        }
        Path opatch = Paths.get(home, "OPatch");
        Files.createDirectories(opatch);
        for (String name : new String[] {"opatch", "version.txt"}) {
            try (InputStream in = OpatchUpgrade.class.getResourceAsStream("/" + name)) {
                Files.copy(in, opatch.resolve(name), StandardCopyOption.REPLACE_EXISTING);
            }
        }
        Files.setPosixFilePermissions(opatch.resolve("opatch"), PosixFilePermissions.fromString("rwxr-x---"));
        System.out.println("OPatch installed in " + opatch + ": "
            + new String(Files.readAllBytes(opatch.resolve("version.txt"))).trim());
    }
}
