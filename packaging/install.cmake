# Run by `cmake --install` (install(SCRIPT) in CMakeLists.txt), so that the prefix given then
# decides the paths: the configuration under PREFIX/etc (/etc for the /usr prefix, as
# GNUInstallDirs has it), the site's root under PREFIX/share/portico/html, the units under
# PREFIX/lib/systemd/system starting PREFIX/bin/portico. file(INSTALL) honours DESTDIR.
set(prefix "${CMAKE_INSTALL_PREFIX}")
if(prefix STREQUAL "/usr")
  set(etc "/etc")
else()
  set(etc "${prefix}/etc")
endif()
set(work "${PORTICO_BINARY_DIR}/packaging")  # the configured files, then installed
file(MAKE_DIRECTORY "${work}")

set(PORTICO_DATADIR "${prefix}/share/portico")
configure_file("${PORTICO_SOURCE_DIR}/packaging/etc/portico.conf.in" "${work}/portico.conf" @ONLY)
file(INSTALL "${work}/portico.conf" "${PORTICO_SOURCE_DIR}/conf/mime.types"
     "${PORTICO_SOURCE_DIR}/conf/uwsgi_params" DESTINATION "${etc}/portico")

foreach(unit portico.service portico.socket)
  file(READ "${PORTICO_SOURCE_DIR}/packaging/systemd/${unit}" text)
  string(REPLACE "/usr/local/bin/portico" "${prefix}/bin/portico" text "${text}")
  string(REPLACE "/etc/portico/" "${etc}/portico/" text "${text}")
  file(WRITE "${work}/${unit}" "${text}")
  file(INSTALL "${work}/${unit}" DESTINATION "${prefix}/lib/systemd/system")
endforeach()
