
P
N
(sbkrmyc05g0d8lprnwirb73sr9ignwmx-app-1.0 Nª¼_‰¸¬àĞ·Ç¾z´áÌ~)ƒkß‚çä??'òòúò`Û1/<\ä??'òòúò`Û1/<\œ€  º_¡ôO(­A\—‰†´å©¿F‡õnXŞìs¥VR
hostile-test-1@&°jÜ“Ø­f«Ğ˜7¢¤^CáIsÓyÛJt¿e„^«ÜÀ_Ÿë¸oIÚ[·b³T}ÌÄ;¿5§¿Ãê"-bhy2ycfvc3rgmwl11wdz46r77w9ky2z4-glibc-2.37-8"-bhy2ycfvc3rgmwl11wdz46r77w9ky2z4-glibc-2.37-8*
app-1.0œ¨"§ÇvY‡Í¬·TJ ¹2" º_¡ôO(­A\—‰†´å©¿F‡õnXŞìs¥V